"""A study in, its SRs out, through a DICOMweb server (``dicomweb-client``): QIDO-RS finds the
study's instances, WADO-RS fetches them, STOW-RS stores the SRs back.

DICOMweb is the default (and the only transport here) because it is plain HTTP(S): one URL,
TLS and the site's usual authentication (basic or a bearer token) through the proxies and
firewalls that already let a PACS viewer in, no AE titles or ports to register with the PACS
administrator as DIMSE (C-FIND / C-GET / C-STORE) needs; Orthanc, dcm4chee, Google Cloud
Healthcare and most current PACS serve it.

Credentials never come from the command line (they would show in the process list and the shell
history): from the environment, ``FHB_DICOMWEB_USERNAME`` + ``FHB_DICOMWEB_PASSWORD`` or
``FHB_DICOMWEB_TOKEN`` (a bearer token); else from a JSON config file, ``--server-config`` or
``FHB_DICOMWEB_CONFIG`` or ``~/.config/fhbiometry/dicomweb.json``::

    {"servers": {"https://pacs.example.org/dicom-web": {"username": "...", "password": "..."}}}

(or {"token": "..."}); a config file that others can read is refused.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

ENV_USERNAME, ENV_PASSWORD, ENV_TOKEN = "FHB_DICOMWEB_USERNAME", "FHB_DICOMWEB_PASSWORD", "FHB_DICOMWEB_TOKEN"
ENV_CONFIG = "FHB_DICOMWEB_CONFIG"
DEFAULT_CONFIG = Path("~/.config/fhbiometry/dicomweb.json")
SR_MODALITY = "SR"
TIMEOUT_S = 60


class ServerError(RuntimeError):
    """A DICOMweb request failed; the message names the server, the request and the fix."""


def config_file(config=None) -> Path | None:
    for candidate in (config, os.environ.get(ENV_CONFIG), DEFAULT_CONFIG):
        if candidate and Path(candidate).expanduser().is_file():
            return Path(candidate).expanduser()
    if config:
        raise ServerError(f"{config}: no such DICOMweb config file (JSON {{\"servers\": {{URL: {{...}}}}}})")
    return None


def read_config(path: Path, url: str) -> dict:
    """The entry of ``url`` in the config file (no entry: no credentials)."""
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ServerError(f"{path}: readable by other users; it holds credentials: run `chmod 600 {path}`")
    try:
        servers = json.loads(path.read_text()).get("servers", {})
    except (json.JSONDecodeError, AttributeError) as err:
        raise ServerError(f"{path}: not a JSON object with a 'servers' mapping ({err})") from err
    return servers.get(url.rstrip("/")) or servers.get(url.rstrip("/") + "/") or {}


def credentials(url: str, config=None) -> dict:
    """{"username", "password"} or {"token"} or {} for ``url``: environment first, then the file."""
    if os.environ.get(ENV_TOKEN):
        return {"token": os.environ[ENV_TOKEN]}
    if os.environ.get(ENV_USERNAME):
        return {"username": os.environ[ENV_USERNAME], "password": os.environ.get(ENV_PASSWORD, "")}
    path = config_file(config)
    entry = read_config(path, url) if path else {}
    return {k: str(v) for k, v in entry.items() if k in ("username", "password", "token")}


def connect(url: str, config=None):
    """A ``DICOMwebClient`` for ``url`` with its credentials."""
    import requests  # lazy: requests only when a server is named; tools/predict imports this module
    from dicomweb_client.api import DICOMwebClient  # lazy: dicomweb-client only when a server is named

    session = requests.Session()
    found = credentials(url, config)
    if "token" in found:
        session.headers["Authorization"] = f"Bearer {found['token']}"
    elif "username" in found:
        session.auth = (found["username"], found.get("password", ""))
    return DICOMwebClient(url=url.rstrip("/"), session=session, timeout=TIMEOUT_S)


def call(what: str, url: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``; an HTTP or connection failure becomes a ServerError."""
    import requests  # lazy: requests only when a server is called

    try:
        return fn(*args, **kwargs)
    except requests.exceptions.HTTPError as err:
        code = err.response.status_code if err.response is not None else "?"
        fix = {401: f"give credentials ({ENV_USERNAME}/{ENV_PASSWORD}, {ENV_TOKEN} or a config file)",
               403: "these credentials may not do this", 404: "check the URL (the DICOMweb root) and the UID"}
        raise ServerError(f"{what} at {url}: HTTP {code}: {fix.get(code, 'see the server log')}") from err
    except requests.exceptions.RequestException as err:
        raise ServerError(f"{what} at {url}: {err.__class__.__name__}: is the server running at that URL?") from err


def study_instances(client, url: str, study_uid: str) -> list:
    """QIDO-RS: (series UID, SOP Instance UID, modality) of every instance of the study."""
    from pydicom.dataset import Dataset  # lazy: pydicom only when a server answers

    found = call(f"QIDO-RS search of study {study_uid}", url, client.search_for_instances,
                 study_instance_uid=study_uid, fields=["00080060"])
    rows = [Dataset.from_json(item) for item in found]
    return [(str(r.SeriesInstanceUID), str(r.SOPInstanceUID), str(r.get("Modality", ""))) for r in rows]


def studies(url: str, config=None, limit: int = 20) -> list[tuple[str, str, str]]:
    """QIDO-RS: (StudyInstanceUID, PatientID, StudyDate) of the server's studies (the first ``limit``)."""
    from pydicom.dataset import Dataset  # lazy: pydicom only when a server answers

    client = connect(url, config)
    found = call("QIDO-RS search for studies", url, client.search_for_studies, limit=limit)
    rows = [Dataset.from_json(item) for item in found]
    return [(str(r.StudyInstanceUID), str(r.get("PatientID", "")), str(r.get("StudyDate", ""))) for r in rows]


def fetch_study(url: str, study_uid: str, folder, config=None) -> list[Path]:
    """WADO-RS: every image instance of the study (not its SRs) into ``folder/<SOP UID>.dcm``."""
    client = connect(url, config)
    instances = [i for i in study_instances(client, url, study_uid) if i[2] != SR_MODALITY]
    if not instances:
        raise ServerError(f"study {study_uid} at {url}: no image instance found (QIDO-RS): check the UID; "
                          "`fhbiometry predict --server URL` without --study lists the studies")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for series_uid, sop_uid, _ in instances:
        ds = call(f"WADO-RS retrieve of instance {sop_uid}", url, client.retrieve_instance,
                  study_uid, series_uid, sop_uid)
        path = folder / f"{sop_uid}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def store(url: str, paths, config=None) -> list[str]:
    """STOW-RS: store the DICOM files ``paths``; returns the SOP Instance UIDs the server took."""
    import pydicom  # lazy: pydicom only when SRs are stored

    client = connect(url, config)
    datasets = [pydicom.dcmread(str(p)) for p in paths]
    if not datasets:
        return []
    response = call("STOW-RS store", url, client.store_instances, datasets)
    failed = response.get("FailedSOPSequence", []) if response is not None else []
    if failed:
        raise ServerError(f"STOW-RS at {url}: {len(failed)} of {len(datasets)} instance(s) refused "
                          f"(FailureReason {[int(f.get('FailureReason', 0)) for f in failed]})")
    return [str(ds.SOPInstanceUID) for ds in datasets]
