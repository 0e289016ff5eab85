"""`fhbiometry predict` writes OUT/report.html: one self-contained page that headless Chromium
renders with every cine's numbers, its best frame at the original resolution, its per-frame
plot and a thumbnail per frame."""
import base64
import io
import re
import subprocess

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clinical_helpers import clinical_inputs, predict_args, require
from fhbiometry.cli import main

pytestmark = pytest.mark.slow   # module fixtures (torchrun, an export, a server, a browser) over a second

torch = pytest.importorskip("torch")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("clinical_report")
    clinical_inputs(root / "in")
    out = root / "out"
    # a threshold between the frames' confidences: some frames accepted, some rejected
    assert main(predict_args(root, [root / "in"], root / "probe", "--confidence-threshold", "0")) == 0
    conf = pd.read_csv(root / "probe" / "frames.csv")["confidence"]
    threshold = float(np.median(conf))
    assert main(predict_args(root, [root / "in"], out, "--confidence-threshold", threshold)) == 0
    return {"root": root, "out": out, "summary": pd.read_csv(out / "summary.csv", dtype={"cine_id": str}),
            "frames": pd.read_csv(out / "frames.csv", dtype={"cine_id": str})}


def chromium(root, *args) -> subprocess.CompletedProcess:
    exe = require("chromium")
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={root / 'chromium-profile'}", *args],
                          capture_output=True, text=True, timeout=120)


def test_report_is_self_contained(run):
    text = (run["out"] / "report.html").read_text()
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in text
    assert "https://" not in text
    assert "<script" not in text
    for uri in sources:       # every image decodes
        Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).load()


def test_chromium_renders_every_cine(run):
    page = run["out"] / "report.html"
    dom = chromium(run["root"], "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    frames, summary = run["frames"], run["summary"]
    assert html.count('class="cine"') == len(summary) == 3
    for row in summary.to_dict("records"):
        cine = row["cine_id"]
        assert f"Cine {cine}" in html
        rows = frames[frames["cine_id"] == cine]
        if row["n_used"] > 0:
            for name in ("bpd", "ofd", "hc"):
                assert f"{row[f'{name}_mm']:.1f} mm" in html, (cine, name)
            assert f"{row['ga_hc_weeks']:.1f} weeks" in html
        else:
            assert "no accepted frame" in html
        assert f'alt="best frame {row["best_frame_index"]} of {cine}"' in html
        assert f'width="{rows["width"].iloc[0]}" height="{rows["height"].iloc[0]}"' in html   # original size
        assert f'alt="per-frame BPD and OFD of {cine}"' in html
    assert html.count('class="thumb') == len(frames)
    assert html.count("<br>rejected: ") == (~frames["accepted"]).sum() > 0
    assert html.count("<br>accepted</div>") == frames["accepted"].sum() > 0


def test_chromium_screenshot_shows_the_page(run, tmp_path):
    shot = tmp_path / "report.png"
    done = chromium(run["root"], f"--screenshot={shot}", "--window-size=1200,900",
                    (run["out"] / "report.html").as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.is_file(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), np.float64)
    assert pixels.shape == (900, 1200)
    assert pixels.std() > 10        # text and images, not a blank page
    top = pixels[150:500, :600]
    assert (top < 100).mean() > 0.01                                 # the dark ultrasound frames are drawn
