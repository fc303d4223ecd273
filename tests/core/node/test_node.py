"""The DICOM node on loopback: real clients (pynetdicom, dcmtk's storescu) send a 16-slice MR
series, a test SCP receives the derived series; bad instances get failure statuses while the
good series completes; a restart completes a half-received series; limits and AE titles hold;
a segmentation goes out as DICOM-SEG; what the destination refused is sent again."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
import yaml
from conftest import cli_error, sr_config, write_mr_series, write_phantoms

from mrilearn.cli import main
from mrilearn.errors import DataError
from mrilearn.node.server import Node
from mrilearn.node.settings import Destination, NodeSettings
from mrilearn.runs import load_run

pynetdicom = pytest.importorskip("pynetdicom")
from pynetdicom import AE, AllStoragePresentationContexts, evt  # noqa: E402
from pynetdicom.sop_class import (  # noqa: E402
    BasicTextSRStorage,
    CTImageStorage,
    MRImageStorage,
    Verification,
)

pytestmark = pytest.mark.usefixtures("single_thread")
WAIT = 60.0  # seconds any wait may take before the test fails (never hangs the suite)
PATIENT = "CompressedSamples^MR1"  # the test data's patient name: never in a log


@pytest.fixture(scope="module")
def sr_package(tmp_path_factory) -> Path:
    """A tiny SR run trained for 2 iterations, exported as a package."""
    tmp = tmp_path_factory.mktemp("node_sr")
    write_phantoms(tmp / "hr", range(4))
    train = {"iterations": 2, "val_every": 0, "checkpoint_every": 0}
    cfg = sr_config(tmp / "hr", tmp / "runs", scheduler=None, evaluation=None, train=train,
                    data={"split": [3, 1, 0, 0]},
                    inference={"name": "MarginCrop", "roi_size": [36, 36, 12], "margin": 2})  # fmt: skip
    (tmp / "c.yaml").write_text(yaml.safe_dump(cfg))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", str(tmp / "c.yaml")]) == 0
        assert main(["export", "--run", str(tmp / "runs" / "tiny"), "-o", str(tmp / "pkg")]) == 0
    finally:
        torch.set_num_threads(threads)
    return tmp / "pkg"


def wait_for(condition: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


class Receiver:
    """A Storage SCP standing for the PACS: keeps what it is sent."""

    def __init__(self, port: int = 0) -> None:
        self.datasets: list[pydicom.Dataset] = []
        self.ae = AE("RECEIVER")
        self.ae.supported_contexts = AllStoragePresentationContexts
        handlers = [(evt.EVT_C_STORE, self._store)]
        self.server = self.ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)

    def _store(self, event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        self.datasets.append(ds)
        return 0x0000

    @property
    def destination(self) -> Destination:
        return Destination("RECEIVER", "127.0.0.1", self.server.server_address[1])

    def wait(self, count: int) -> list[pydicom.Dataset]:
        wait_for(lambda: len(self.datasets) >= count, f"{count} derived instances")
        return self.datasets


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.ae.shutdown()


@pytest.fixture
def start_node(tmp_path) -> Iterator[Callable[..., Node]]:
    nodes: list[Node] = []

    def start(predictor, **settings) -> Node:
        options = {"spool": tmp_path / "spool", "host": "127.0.0.1", "port": 0,
                   "series_timeout": 0.5, "min_slices": 4, **settings}  # fmt: skip
        node = Node(predictor, NodeSettings(**options))
        node.start()
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop()


def send(port: int, items: list, ae_title: str = "SCANNER") -> list[int]:
    """C-STORE files or datasets in one association; the statuses."""
    ae = AE(ae_title)
    for sop_class in (MRImageStorage, CTImageStorage, BasicTextSRStorage):
        ae.add_requested_context(sop_class)
    assoc = ae.associate("127.0.0.1", port, ae_title="MRILEARN")
    assert assoc.is_established, "the node refused the association"
    try:
        return [int(assoc.send_c_store(item).Status) for item in items]
    finally:
        assoc.release()


def audit(node: Node) -> list[dict]:
    path = node.settings.audit_path
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def positions(datasets: list[pydicom.Dataset]) -> list[tuple[float, ...]]:
    return sorted(tuple(round(float(v), 3) for v in d.ImagePositionPatient) for d in datasets)


def check_derived(derived: list[pydicom.Dataset], sources: list[Path], model: str) -> None:
    source = [pydicom.dcmread(p) for p in sources]
    assert len(derived) == len(source)
    assert positions(derived) == positions(source)
    assert {tuple(d.ImageOrientationPatient) for d in derived} == {
        tuple(source[0].ImageOrientationPatient)
    }
    assert len({d.SeriesInstanceUID for d in derived}) == 1
    assert derived[0].SeriesInstanceUID != source[0].SeriesInstanceUID
    assert not {d.SOPInstanceUID for d in derived} & {s.SOPInstanceUID for s in source}
    assert derived[0].StudyInstanceUID == source[0].StudyInstanceUID
    assert model in derived[0].SeriesDescription and "tiny-it2-" in derived[0].SeriesDescription


def bad_instances(template: Path) -> list[pydicom.Dataset]:
    """A corrupt instance (pixel data cut short), a CT slice and a text report."""
    from pydicom.uid import generate_uid

    corrupt = pydicom.dcmread(template)
    corrupt.SOPInstanceUID, corrupt.SeriesInstanceUID = generate_uid(), generate_uid()
    corrupt.PixelData = corrupt.PixelData[:100]
    ct = pydicom.dcmread(template)
    ct.SOPClassUID, ct.Modality, ct.SOPInstanceUID = CTImageStorage, "CT", generate_uid()
    report = pydicom.Dataset()
    report.file_meta = pydicom.dataset.FileMetaDataset()
    report.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    report.SOPClassUID, report.SOPInstanceUID = BasicTextSRStorage, generate_uid()
    report.SeriesInstanceUID, report.Modality = generate_uid(), "SR"
    return [corrupt, ct, report]


def test_pynetdicom_sender_gets_statuses_and_the_good_series_completes(
    sr_package, receiver, start_node, tmp_path, caplog
):
    node = start_node(load_run(sr_package), forward=receiver.destination)
    series = write_mr_series(tmp_path / "a")
    small = write_mr_series(tmp_path / "b", slices=2)
    with caplog.at_level("INFO", logger="mrilearn"):
        statuses = send(node.port, [*series[:8], *bad_instances(series[0]), *series[8:], *small])
        assert statuses == [0] * 8 + [0xC000, 0xC001, 0x0122] + [0] * 10
        check_derived(receiver.wait(16), series, "MDCSRN")
        wait_for(lambda: len(audit(node)) == 2, "two audit lines")
    lines = {line["source_series"]: line for line in audit(node)}
    good = lines[pydicom.dcmread(series[0]).SeriesInstanceUID]
    assert good["outcome"] == "done" and good["instances"] == 16 and good["senders"] == ["SCANNER"]
    assert (
        good["version"].startswith("tiny-it2-")
        and good["derived_series"] == receiver.datasets[0].SeriesInstanceUID
    )
    assert {"receive_s", "wait_s", "read_s", "infer_s", "write_s", "send_s", "total_s"} <= set(good)
    assert "too small" in lines[pydicom.dcmread(small[0]).SeriesInstanceUID]["reason"]
    assert PATIENT not in node.settings.audit_path.read_text() and PATIENT not in caplog.text
    assert "status 0xC000" in caplog.text
    spool = node.settings.spool
    assert spool.stat().st_mode & 0o777 == 0o700
    assert not any((spool / "incoming").iterdir()) and not any((spool / "work").iterdir())
    assert not any((spool / "outbox").iterdir())


def test_a_restart_completes_a_half_received_series(sr_package, receiver, start_node, tmp_path):
    predictor = load_run(sr_package)
    first = start_node(predictor, forward=receiver.destination, series_timeout=600)
    series = write_mr_series(tmp_path / "a")
    assert send(first.port, series[:8]) == [0] * 8
    first.stop()  # before the series is complete; as if the job had begun when it stopped:
    spool = first.settings.spool
    uid = pydicom.dcmread(series[0]).SeriesInstanceUID
    (spool / "incoming" / uid).rename(spool / "work" / uid)
    second = start_node(predictor, forward=receiver.destination)
    assert send(second.port, series[8:]) == [0] * 8
    check_derived(receiver.wait(16), series, "MDCSRN")
    time.sleep(0.5)
    assert len(receiver.datasets) == 16 and [a["outcome"] for a in audit(second)] == ["done"]


def test_allowed_ae_titles_and_the_size_limit(sr_package, receiver, start_node, tmp_path):
    node = start_node(load_run(sr_package), forward=receiver.destination, allow=("SCANNER",),
                      max_series_mb=0.025)  # fmt: skip
    ae = AE("INTRUDER")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="MRILEARN")
    assert assoc.is_rejected
    statuses = send(node.port, write_mr_series(tmp_path / "a")[:4])
    assert statuses[:2] == [0, 0] and statuses[-1] == 0xA700


def test_segmentation_goes_out_as_dicom_seg(tiny_seg_run, start_node, tmp_path):
    hd = pytest.importorskip("highdicom")
    node = start_node(load_run(tiny_seg_run), out=tmp_path / "out")
    series = write_mr_series(tmp_path / "a")
    assert send(node.port, series) == [0] * 16
    uid = pydicom.dcmread(series[0]).SeriesInstanceUID
    wait_for(lambda: (tmp_path / "out" / f"{uid}.dcm").is_file(), "the DICOM-SEG file")
    seg = hd.seg.segread(tmp_path / "out" / f"{uid}.dcm")
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"  # Segmentation Storage
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == uid
    assert [d.segment_label for d in seg.SegmentSequence] == [
        label.name for label in load_run(tiny_seg_run).label_table()
    ]
    wait_for(lambda: audit(node), "the audit line")
    assert audit(node)[0]["derived_sop_class"] == "Segmentation Storage"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_what_the_destination_refused_is_sent_again(sr_package, start_node, tmp_path):
    port = free_port()  # nothing listens there yet
    node = start_node(load_run(sr_package), forward=Destination("RECEIVER", "127.0.0.1", port),
                      retry_seconds=0.3)  # fmt: skip
    series = write_mr_series(tmp_path / "a")
    assert send(node.port, series) == [0] * 16
    wait_for(lambda: audit(node), "the audit line")
    assert (
        audit(node)[0]["outcome"] == "failed" and "kept in the outbox" in audit(node)[0]["reason"]
    )
    assert len(list((node.settings.spool / "outbox").iterdir())) == 1
    late = Receiver(port)
    try:
        check_derived(late.wait(16), series, "MDCSRN")
        wait_for(lambda: len(audit(node)) == 2, "the resent line")
        assert audit(node)[1]["event"] == "resent"
        assert not any((node.settings.spool / "outbox").iterdir())
    finally:
        late.ae.shutdown()


@pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk's storescu is not installed")
def test_storescu_sends_to_mrilearn_serve_which_stops_cleanly_on_ctrl_c(
    sr_package, receiver, tmp_path
):
    port = free_port()
    cmd = [sys.executable, "-m", "mrilearn", "--threads", "1", "serve", "--run", str(sr_package),
           "--port", str(port), "--host", "127.0.0.1", "--forward", str(receiver.destination),
           "--spool", str(tmp_path / "spool"), "--series-timeout", "0.5"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: echo(port) or proc.poll() is not None, "mrilearn serve to listen", 120)
        assert proc.poll() is None, proc.communicate()[1]
        series = write_mr_series(tmp_path / "a")
        sent = subprocess.run(["storescu", "-aet", "SCANNER", "-aec", "MRILEARN", "127.0.0.1",
                               str(port), *map(str, series)], capture_output=True, text=True,
                              timeout=WAIT)  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        check_derived(receiver.wait(16), series, "MDCSRN")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in out and "SIGINT: stopping after the running job" in err
    assert PATIENT not in err and PATIENT not in (tmp_path / "spool" / "audit.jsonl").read_text()
    assert np.all(
        [
            line.startswith("{")
            for line in (tmp_path / "spool" / "audit.jsonl").read_text().splitlines()
        ]
    )


def echo(port: int) -> bool:
    ae = AE("PROBE")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="MRILEARN")
    if assoc.is_established:
        assoc.release()
        return True
    return False


def test_bad_options_and_a_shared_spool_are_refused(sr_package, tmp_path, capsys, start_node):
    run = ["serve", "--run", sr_package, "--spool", tmp_path / "spool"]
    assert "exactly one of --forward" in cli_error(
        capsys, [*run, "--out", tmp_path / "o", "--forward", "PACS@host:104"]
    )
    assert "expected AET@HOST:PORT" in cli_error(capsys, [*run, "--forward", "PACS:104"])
    assert "AE title" in cli_error(capsys, [*run, "--out", tmp_path, "--ae-title", "A" * 17])
    assert not (tmp_path / "spool").exists()
    start_node(load_run(sr_package), out=tmp_path / "out")
    with pytest.raises(DataError, match="another mrilearn serve uses this spool"):
        start_node(load_run(sr_package), out=tmp_path / "out")
