"""Rendering: the view the templates read, Copier, the template's git workspace, update.

The stages run in order: ``spec`` reads and checks a spec, ``service`` resolves it
into the frozen model, ``render`` turns the model into a project.
"""
