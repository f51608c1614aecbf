"""``python -m cited_answers``: serve with uvicorn as the settings say (host, port, workers)."""

import uvicorn

from .settings import get_settings


def main() -> None:
    """Run the service until SIGTERM; open streams get SHUTDOWN_GRACE seconds to end."""
    settings = get_settings()
    uvicorn.run(
        "cited_answers.main:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        log_config=None,  # the app configures logging (LOG_FORMAT, LOG_LEVEL)
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 5,
    )


if __name__ == "__main__":
    main()
