"""Save docs/serve.png: the page of ``seqnet serve`` after classifying a few reviews; with
``--page browser``, docs/browser.png: the in-browser page of an ONNX bundle.

The model is a small one trained in a temporary folder on a dozen hand-written reviews, so
the picture needs no data download and takes a minute on a CPU; pass ``--workdir`` to show
a run of your own instead. Needs ``pip install 'seqnet[serve]' playwright`` and a Chromium
(``SEQNET_CHROMIUM`` or ``chromium`` on the PATH); the browser page also needs
``seqnet[export]`` and npm::

    KERAS_BACKEND=jax python docs/screenshot_serve.py
    KERAS_BACKEND=tensorflow python docs/screenshot_serve.py --page browser
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

REVIEWS = {
    "pos": [
        "A great film, I loved it. Great acting and a moving story.",
        "Wonderful cast, brilliant script; I loved every minute.",
        "Great fun, beautiful and moving. A wonderful film.",
        "Brilliant and funny, the best film this year.",
    ],
    "neg": [
        "A terrible film. Boring and bad, with awful acting.",
        "Bad script, boring plot, a waste of time.",
        "Awful and dull; the worst film this year.",
        "Terrible acting, bad jokes, boring from start to end.",
    ],
}
SHOWN = [
    "A wonderful film with a great cast; I loved it.",
    "Boring, bad and far too long. A waste of time.",
    "The acting is brilliant but the plot is dull.",
]


def train_demo_run(folder: Path) -> Path:
    """Train a small model on REVIEWS (used for train and test split alike)."""
    from seqnet.config import ModelConfig, TrainConfig
    from seqnet.train import train_and_evaluate

    archive = folder / "aclImdb_v1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("train", "test"):
            for label, texts in REVIEWS.items():
                for index, text in enumerate(texts * 8):
                    info = tarfile.TarInfo(f"aclImdb/{split}/{label}/{index}_5.txt")
                    info.size = len(text.encode())
                    tar.addfile(info, io.BytesIO(text.encode()))
    model = ModelConfig(vocabulary_size=100, sequence_length=40, embedding_dim=16, filters=16)
    config = TrainConfig(data=str(archive), epochs=15, batch_size=8, model=model)
    train_and_evaluate(config, folder / "run", verbose=0)
    return folder / "run"


def start_server(workdir: Path) -> tuple[subprocess.Popen, str]:
    """``seqnet serve`` on a free loopback port, once ``/health`` answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "seqnet", "serve", "--workdir", str(workdir)]
    process = subprocess.Popen([*command, "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            return process, url
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("seqnet serve did not start")


def serve_bundle(workdir: Path, folder: Path) -> tuple[subprocess.Popen, str]:
    """Export ``workdir`` as an ONNX bundle in ``folder``, ``npm install`` it, and serve it
    with Python's static file server, as the bundle's README says."""
    from seqnet.export import export_run

    bundle = export_run(workdir, "onnx", folder / "bundle")
    subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=bundle, check=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    process = subprocess.Popen(command, cwd=bundle)
    time.sleep(1)
    return process, f"http://127.0.0.1:{port}"


def screenshot(url: str, output: Path) -> None:
    """Type SHOWN into the page, press Classify, and save the page as a PNG."""
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("SEQNET_CHROMIUM") or shutil.which("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        page = browser.new_page(viewport={"width": 900, "height": 560})
        page.goto(url + "/")
        page.wait_for_selector("#classify:enabled")  # the in-browser page loads its model first
        page.get_by_label("Reviews, one per line").fill("\n".join(SHOWN))
        page.get_by_role("button", name="Classify").click()
        page.locator("#results tbody tr").first.wait_for()
        page.screenshot(path=str(output), full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="run folder to serve (default: train one)")
    parser.add_argument("--page", choices=("serve", "browser"), default="serve")
    parser.add_argument("--output", type=Path, help="default: docs/serve.png or browser.png")
    args = parser.parse_args()
    output = args.output or Path(__file__).with_name(f"{args.page}.png")
    with tempfile.TemporaryDirectory() as folder:
        workdir = args.workdir or train_demo_run(Path(folder))
        if args.page == "serve":
            process, url = start_server(workdir)
        else:
            process, url = serve_bundle(workdir, Path(folder))
        try:
            screenshot(url, output)
        finally:
            process.terminate()
            process.wait(timeout=60)
    print(f"Written: {output}")


if __name__ == "__main__":
    main()
