"""The hand-written baseline: the research note's pattern, pointed at the fake LM.

This is the service the note (shared/reference/dspy-fastapi-streaming.md) teaches,
kept as close to its code as a benchmark allows:

- ``dspy.configure(lm=lm, async_max_workers=4)`` and programs wrapped with
  ``dspy.streamify(program, stream_listeners=[...])`` at module level, with the
  ``StreamListener``\\ s created once, at module level. ``streamify`` runs a sync program
  through ``dspy.asyncify`` itself (``is_async_program=False``), which is the note's
  ``streamify(asyncify(program))``: that literal form fails at import in DSPy 3.4
  (``streamify`` looks for the listeners' predictors on the wrapper function:
  ``AttributeError: 'function' object has no attribute 'named_predictors'``), and without
  listeners the note's loop streams no ``StreamResponse`` at all (only raw LM chunks);
- the note's ``AgentStatusProvider`` for the ReAct agent and its sync ``search`` tool;
- hand-formatted ``data: {json}\\n\\n`` strings through ``StreamingResponse``, ending
  with ``data: [DONE]``.

Deviations, all so that one load client can drive every server: the LM is ``LM_MODEL``
(the specs' ``openai/gpt-4o-mini``) on ``LM_API_BASE`` with ``cache=False``; both programs take
``{"question": ...}`` at ``POST /v1/<program>/stream``; the qa program uses the same
signature as specs/qa.yaml; a ``/healthz`` route answers the launcher.
``BASELINE_ASYNC_MAX_WORKERS`` overrides the note's 4 worker threads.

Serve with ``LM_API_BASE=http://127.0.0.1:PORT/v1 uvicorn bench.baseline_app:app``.
"""

from __future__ import annotations

import json
import os

import dspy
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

app = FastAPI()


class Query(BaseModel):
    question: str


lm = dspy.LM(
    os.environ.get("LM_MODEL", "openai/gpt-4o-mini"),
    api_base=os.environ.get("LM_API_BASE", "http://127.0.0.1:8001/v1"),
    api_key=os.environ.get("LM_API_KEY", "fake"),
    cache=False,
)
dspy.configure(lm=lm, async_max_workers=int(os.environ.get("BASELINE_ASYNC_MAX_WORKERS", "4")))


# --- qa: the note's "Custom SSE with Token Streaming", with an answer listener ------------


class AnswerQuestion(dspy.Signature):
    """Answer the question with a short factual answer."""

    question: str = dspy.InputField(desc="The question to answer.")
    answer: str = dspy.OutputField(desc="A short answer, one or two sentences.")


qa_program = dspy.ChainOfThought(AnswerQuestion)
qa_streaming = dspy.streamify(  # asyncify()s the program itself: see the module docstring
    qa_program,
    stream_listeners=[dspy.streaming.StreamListener(signature_field_name="answer")],
)


@app.post("/v1/qa/stream")
async def qa_stream(query: Query):
    async def generate():
        async for item in qa_streaming(question=query.question):
            if isinstance(item, dspy.streaming.StreamResponse):
                yield f"data: {json.dumps({'type': 'token', 'chunk': item.chunk})}\n\n"
            elif isinstance(item, dspy.streaming.StatusMessage):
                yield f"data: {json.dumps({'type': 'status', 'msg': item.message})}\n\n"
            elif isinstance(item, dspy.Prediction):
                yield f"data: {json.dumps({'type': 'result', 'answer': item.answer})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(generate(), media_type="text/event-stream")


# --- agent: the note's "Full Combined Example" ---------------------------------------------


class AgentStatusProvider(dspy.streaming.StatusMessageProvider):
    def tool_start_status_message(self, instance, inputs):
        return f"Using tool: {instance.name}"

    def tool_end_status_message(self, outputs):
        return "Tool complete"

    def lm_start_status_message(self, instance, inputs):
        return "Generating response..."


def search(query: str) -> str:
    """Search for information."""
    return f"Results for: {query}"


react = dspy.ReAct("question -> answer", tools=[search])

streaming_agent = dspy.streamify(
    react,
    status_message_provider=AgentStatusProvider(),
    stream_listeners=[
        dspy.streaming.StreamListener(signature_field_name="next_thought", allow_reuse=True)
    ],
)


@app.post("/v1/agent/stream")
async def agent_stream(query: Query):
    async def generate():
        async for item in streaming_agent(question=query.question):
            if isinstance(item, dspy.streaming.StatusMessage):
                yield f"data: {json.dumps({'type': 'status', 'message': item.message})}\n\n"
            elif isinstance(item, dspy.streaming.StreamResponse):
                data = {"type": "token", "field": item.signature_field_name, "chunk": item.chunk}
                yield f"data: {json.dumps(data)}\n\n"
            elif isinstance(item, dspy.Prediction):
                yield f"data: {json.dumps({'type': 'complete', 'answer': item.answer})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(generate(), media_type="text/event-stream")


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}
