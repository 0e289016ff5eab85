"""The round trip with a real DICOM server: a real Orthanc (Debian packages orthanc and
orthanc-dicomweb) on loopback with its own temporary storage, config and password, a synthetic
cine stored in it (STOW-RS), `fhbiometry predict --server ... --study ... --sr` run against it,
and the SR found in Orthanc afterwards with the values of summary.csv. Credentials come from
the environment or a config file (never the command line)."""
import json
import socket
import subprocess
import time

import pandas as pd
import pydicom
import pytest
import requests

from clinical_helpers import dciodvfy_errors, dicomweb_plugin, predict_args, require
from fhbiometry.cli import main
from fhbiometry.clinical import codes as cc
from fhbiometry.clinical.dicomweb import ServerError, credentials, store, study_instances, connect
from fhbiometry.clinical.sr import read_sr
from predict_helpers import head_frames

pytestmark = pytest.mark.slow   # module fixtures (torchrun, an export, a server, a browser) over a second

torch = pytest.importorskip("torch")
USER, PASSWORD = "fhb", "s3cret-for-the-test"
START_TIMEOUT_S = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    """A running Orthanc: {"url" (its DICOMweb root), "rest" (its REST root)}; stopped at the end."""
    exe, plugin = require("Orthanc"), dicomweb_plugin()
    root = tmp_path_factory.mktemp("orthanc")
    port = free_port()
    config = {"Name": "fhbiometry-test", "StorageDirectory": str(root / "storage"),
              "IndexDirectory": str(root / "index"), "HttpPort": port, "DicomPort": free_port(),
              "RemoteAccessAllowed": False, "AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD},
              "Plugins": [plugin], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}, "ConcurrentJobs": 1}
    (root / "orthanc.json").write_text(json.dumps(config))
    log = open(root / "orthanc.log", "w")
    proc = subprocess.Popen([exe, str(root / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    rest = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if requests.get(f"{rest}/system", auth=(USER, PASSWORD), timeout=2).ok:
                    break
            except requests.exceptions.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Orthanc did not start in {START_TIMEOUT_S} s: {(root / 'orthanc.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield {"url": f"{rest}/dicom-web", "rest": rest}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@pytest.fixture
def login(monkeypatch):
    monkeypatch.setenv("FHB_DICOMWEB_USERNAME", USER)
    monkeypatch.setenv("FHB_DICOMWEB_PASSWORD", PASSWORD)
    monkeypatch.delenv("FHB_DICOMWEB_TOKEN", raising=False)


def test_predict_reads_the_study_from_orthanc_and_stores_the_sr_back(orthanc, login, tmp_path):
    from fhbiometry.synth.writers import write_dicom

    torch.set_num_threads(1)
    cine = write_dicom(tmp_path / "cine.dcm", head_frames(4), 1.2, "P9", 9)
    study = str(pydicom.dcmread(cine).StudyInstanceUID)
    assert store(orthanc["url"], [cine]) == [str(pydicom.dcmread(cine).SOPInstanceUID)]      # STOW-RS
    out = tmp_path / "out"
    args = predict_args(tmp_path, [], out, "--server", orthanc["url"], "--study", study, "--sr",
                        "--confidence-threshold", "0")
    assert main(args) == 0
    summary = pd.read_csv(out / "summary.csv", dtype={"cine_id": str}).iloc[0]
    assert summary["n_used"] > 0
    assert (out / "report.html").is_file()
    fetched = sorted((out / "study").glob("*.dcm"))         # WADO-RS wrote the cine as it came back
    assert len(fetched) == 1
    assert all(dciodvfy_errors(p) == [] for p in fetched)
    # the SR is in Orthanc now, in the same study
    client = connect(orthanc["url"])
    srs = [i for i in study_instances(client, orthanc["url"], study) if i[2] == "SR"]
    assert len(srs) == 1
    stored = client.retrieve_instance(study, srs[0][0], srs[0][1])
    path = tmp_path / "from_orthanc.dcm"
    stored.save_as(path, enforce_file_format=True)
    values = {m["code"]: m["value"] for m in read_sr(path)["measurements"] if "equation" not in m}
    for column, code in {"bpd_mm": cc.BPD, "ofd_mm": cc.OFD, "hc_mm": cc.HC, "cephalic_index": cc.CEPHALIC_INDEX}.items():
        assert values[code.value] == pytest.approx(summary[column], abs=1e-3), column
    assert stored.PatientID == "P9"
    assert stored.SOPInstanceUID == pydicom.dcmread(next((out / "sr").glob("*.dcm"))).SOPInstanceUID


def test_without_credentials_the_server_says_so(orthanc, monkeypatch, tmp_path, capsys):
    for key in ("FHB_DICOMWEB_USERNAME", "FHB_DICOMWEB_PASSWORD", "FHB_DICOMWEB_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("FHB_DICOMWEB_CONFIG", str(tmp_path / "none.json"))
    monkeypatch.setenv("HOME", str(tmp_path))
    code = main(predict_args(tmp_path, [], tmp_path / "out", "--server", orthanc["url"], "--study", "1.2.3"))
    assert code == 2
    assert "HTTP 401" in capsys.readouterr().err


def test_listing_studies_when_no_study_is_given(orthanc, login, tmp_path, capsys):
    from fhbiometry.synth.writers import write_dicom

    cine = write_dicom(tmp_path / "c.dcm", head_frames(2), 1.0, "P10", 10)
    store(orthanc["url"], [cine])
    assert main(predict_args(tmp_path, [], tmp_path / "out", "--server", orthanc["url"])) == 2
    err = capsys.readouterr().err
    assert "--server needs --study" in err
    assert str(pydicom.dcmread(cine).StudyInstanceUID) in err


def test_credentials_from_environment_then_config_file(tmp_path, monkeypatch):
    for key in ("FHB_DICOMWEB_USERNAME", "FHB_DICOMWEB_PASSWORD", "FHB_DICOMWEB_TOKEN", "FHB_DICOMWEB_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    url = "https://pacs.example.org/dicom-web"
    assert credentials(url) == {}
    config = tmp_path / "dicomweb.json"
    config.write_text(json.dumps({"servers": {url: {"username": "a", "password": "b"}}}))
    config.chmod(0o644)
    with pytest.raises(ServerError, match="chmod 600"):
        credentials(url, config)
    config.chmod(0o600)
    assert credentials(url + "/", config) == {"username": "a", "password": "b"}
    monkeypatch.setenv("FHB_DICOMWEB_CONFIG", str(config))
    assert credentials(url) == {"username": "a", "password": "b"}
    monkeypatch.setenv("FHB_DICOMWEB_TOKEN", "t0ken")
    assert credentials(url, config) == {"token": "t0ken"}


def test_no_credential_option_on_the_command_line(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = capsys.readouterr().out
    assert "--server" in text
    assert "--study" in text
    assert "--sr" in text
    assert "--password" not in text
    assert "--user" not in text
    assert "--token" not in text
