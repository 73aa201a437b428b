"""The fswap Gradio app: `ui` lays out the tabs, `handlers` does the work behind each endpoint,
`render` draws the faces and masks, `model` loads the pipeline once. `app.py` launches it."""
