"""The fswap demo and Hugging Face Space entry point.

    python app.py                                  # http://127.0.0.1:7860
    FSWAP_MODEL=path/to/checkpoint python app.py   # or a Hub repo id, "org/name"

The pipeline is the embedded default checkpoint unless `FSWAP_MODEL` names another; it is
loaded once, on the GPU when there is one. On a ZeroGPU Space the network call runs under
`spaces.GPU`; elsewhere that decorator is not there and the call runs as it is.

Uploads go to a temporary folder of the app's own unless `GRADIO_TEMP_DIR` names one; it and the
results' folder are kept under a size and removed when the app exits, on Ctrl-C or SIGTERM alike.
"""

import os
import signal

# Read when gradio and huggingface_hub are imported: no analytics or telemetry calls at start.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from space.resources import own_upload_folder  # noqa: E402  (imports no gradio)

uploads = own_upload_folder()  # sets GRADIO_TEMP_DIR, which gradio reads as it builds the page

try:  # ZeroGPU wants `spaces` imported before torch
    import spaces

    gpu = spaces.GPU
except ImportError:

    def gpu(function):
        return function


from space.model import LazyPipeline, load_default_pipeline  # noqa: E402
from space.ui import build_demo, launch_options  # noqa: E402

pipeline = LazyPipeline(load_default_pipeline)
demo = build_demo(pipeline, gpu=gpu, uploads=uploads)

if __name__ == "__main__":
    from fswap.errors import FswapError

    try:
        pipeline.get()  # load before the first visitor arrives, and fail here if there is no model
    except FswapError as error:
        raise SystemExit(f"fswap: {error}") from None
    # SIGTERM (a container stopping) as Ctrl-C: gradio closes the server, and the temporary
    # folders are removed as Python exits.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    demo.launch(**launch_options())
