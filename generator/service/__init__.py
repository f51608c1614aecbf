"""The resolved service: the frozen model the templates see, and the DSPy facts it uses."""
