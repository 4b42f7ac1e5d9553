"""The Gradio page of charrnn: ``python demo/app.py`` (or ``python -m demo``) serves it.

``app`` wires the page's events to the handlers of its rooms; every room renders what ``charrnn`` yields.
"""
