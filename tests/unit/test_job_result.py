"""The job result parser: what the MNIST sample's log tail says about the run.

Covers: the seed walkthrough's real log (last step 490, accuracy 0.9494, Tesla K80), a tail cut
before the device lines or inside a line (result without GPU), TensorFlow 2's one-line device
properties, a GPU named only by the "Creating TensorFlow device" line, Windows line ends, and
output that is not the sample's (empty, another program, garbled numbers, accuracy out of range,
binary noise) giving no result instead of an error; and the capped log tail the parser gets
(shared.kube.tail_text) starting at a whole line or character.
"""

from __future__ import annotations

import pytest

from shared.job_result import JobResult, parse_job_result
from shared.kube import tail_text

SEED_LOG = "\n".join((
    '2019-05-16 16:08:31.258328: I tensorflow/core/platform/cpu_feature_guard.cc:137] Your CPU supports instructions that this TensorFlow binary was not compiled to use: SSE4.1 SSE4.2 AVX AVX2 FMA',  # noqa: E501
    '2019-05-16 16:08:31.396846: I tensorflow/core/common_runtime/gpu/gpu_device.cc:1030] Found device 0 with properties: ',  # noqa: E501
    'name: Tesla K80 major: 3 minor: 7 memoryClockRate(GHz): 0.8235',
    'pciBusID: 2fd7:00:00.0',
    'totalMemory: 11.17GiB freeMemory: 11.10GiB',
    '2019-05-16 16:08:31.396886: I tensorflow/core/common_runtime/gpu/gpu_device.cc:1120] Creating TensorFlow device (/device:GPU:0) -> (device: 0, name: Tesla K80, pci bus id: 2fd7:00:00.0, compute capability: 3.7)',  # noqa: E501
    '2019-05-16 16:08:36.076962: I tensorflow/stream_executor/dso_loader.cc:139] successfully opened CUDA library libcupti.so.8.0 locally',  # noqa: E501
    'Successfully downloaded train-images-idx3-ubyte.gz 9912422 bytes.',
    'Extracting /tmp/tensorflow/input_data/train-images-idx3-ubyte.gz',
    'Successfully downloaded train-labels-idx1-ubyte.gz 28881 bytes.',
    'Extracting /tmp/tensorflow/input_data/train-labels-idx1-ubyte.gz',
    'Successfully downloaded t10k-images-idx3-ubyte.gz 1648877 bytes.',
    'Extracting /tmp/tensorflow/input_data/t10k-images-idx3-ubyte.gz',
    'Successfully downloaded t10k-labels-idx1-ubyte.gz 4542 bytes.',
    'Extracting /tmp/tensorflow/input_data/t10k-labels-idx1-ubyte.gz',
    'Accuracy at step 0: 0.1081',
    'Accuracy at step 10: 0.7457',
    'Accuracy at step 20: 0.8233',
    'Accuracy at step 30: 0.8644',
    'Accuracy at step 40: 0.8848',
    'Accuracy at step 50: 0.8889',
    'Accuracy at step 60: 0.8898',
    'Accuracy at step 70: 0.8979',
    'Accuracy at step 80: 0.9087',
    'Accuracy at step 90: 0.9099',
    'Adding run metadata for 99',
    'Accuracy at step 100: 0.9125',
    'Accuracy at step 110: 0.9184',
    'Accuracy at step 120: 0.922',
    'Accuracy at step 130: 0.9161',
    'Accuracy at step 140: 0.9219',
    'Accuracy at step 150: 0.9151',
    'Accuracy at step 160: 0.9199',
    'Accuracy at step 170: 0.9305',
    'Accuracy at step 180: 0.9251',
    'Accuracy at step 190: 0.9258',
    'Adding run metadata for 199',
    'Accuracy at step 200: 0.9315',
    'Accuracy at step 210: 0.9361',
    'Accuracy at step 220: 0.9357',
    'Accuracy at step 230: 0.9392',
    'Accuracy at step 240: 0.9387',
    'Accuracy at step 250: 0.9401',
    'Accuracy at step 260: 0.9398',
    'Accuracy at step 270: 0.9407',
    'Accuracy at step 280: 0.9434',
    'Accuracy at step 290: 0.9447',
    'Adding run metadata for 299',
    'Accuracy at step 300: 0.9463',
    'Accuracy at step 310: 0.943',
    'Accuracy at step 320: 0.9439',
    'Accuracy at step 330: 0.943',
    'Accuracy at step 340: 0.9457',
    'Accuracy at step 350: 0.9497',
    'Accuracy at step 360: 0.9481',
    'Accuracy at step 370: 0.9466',
    'Accuracy at step 380: 0.9514',
    'Accuracy at step 390: 0.948',
    'Adding run metadata for 399',
    'Accuracy at step 400: 0.9469',
    'Accuracy at step 410: 0.9489',
    'Accuracy at step 420: 0.9529',
    'Accuracy at step 430: 0.9507',
    'Accuracy at step 440: 0.9504',
    'Accuracy at step 450: 0.951',
    'Accuracy at step 460: 0.9512',
    'Accuracy at step 470: 0.9539',
    'Accuracy at step 480: 0.9533',
    'Accuracy at step 490: 0.9494',
    'Adding run metadata for 499',
))  # fmt: skip
"""`kubectl logs` of the sample pod, from the seed walkthrough (use-gpus-on-aks)."""


def test_the_seed_log_gives_the_last_step_its_accuracy_and_the_gpu() -> None:
    assert parse_job_result(SEED_LOG) == JobResult(step=490, accuracy=0.9494, gpu="Tesla K80")


def test_a_tail_without_the_device_lines_still_gives_the_accuracy() -> None:
    tail = SEED_LOG[SEED_LOG.index("Accuracy at step 300") :]
    assert parse_job_result(tail) == JobResult(step=490, accuracy=0.9494, gpu=None)


def test_a_tail_cut_inside_a_line_reads_the_whole_lines_after_it() -> None:
    tail = SEED_LOG[-70:]
    assert not tail.startswith("Accuracy")
    assert parse_job_result(tail) == JobResult(step=490, accuracy=0.9494, gpu=None)


@pytest.mark.parametrize(
    ("device_lines", "gpu"),
    [
        pytest.param(
            "2026-01-01 10:00:00.000001: I tensorflow/core/common_runtime/gpu/gpu_device.cc:1561] "
            "Found device 0 with properties: pciBusID: 0001:00:00.0 name: Tesla T4 "
            "computeCapability: 7.5",
            "Tesla T4",
            id="tensorflow-2-found-device",
        ),
        pytest.param(
            "I gpu_device.cc:1030] Found device 0 with properties: \n"
            "name: NVIDIA A100 80GB PCIe major: 8 minor: 0 memoryClockRate(GHz): 1.41",
            "NVIDIA A100 80GB PCIe",
            id="tensorflow-1-found-device",
        ),
        pytest.param(
            "I gpu_device.cc:1120] Creating TensorFlow device (/device:GPU:0) -> (device: 0, "
            "name: Tesla T4, pci bus id: 0001:00:00.0, compute capability: 7.5)",
            "Tesla T4",
            id="creating-device-only",
        ),
    ],
)
def test_the_gpu_is_read_from_either_device_line(device_lines: str, gpu: str) -> None:
    log = f"{device_lines}\nAccuracy at step 90: 0.9099\n"
    assert parse_job_result(log) == JobResult(step=90, accuracy=0.9099, gpu=gpu)


def test_windows_line_ends_are_read() -> None:
    log = SEED_LOG.replace("\n", "\r\n")
    assert parse_job_result(log) == JobResult(step=490, accuracy=0.9494, gpu="Tesla K80")


def test_the_last_accuracy_line_wins_even_when_steps_restart() -> None:
    log = "Accuracy at step 490: 0.9494\nAccuracy at step 0: 0.1081\n"
    assert parse_job_result(log) == JobResult(step=0, accuracy=0.1081, gpu=None)


@pytest.mark.parametrize(
    "log",
    [
        pytest.param("", id="empty"),
        pytest.param("hello from another image\nexit 0\n", id="other-program"),
        pytest.param("Accuracy at step ten: 0.9\n", id="step-not-a-number"),
        pytest.param("Accuracy at step 10: nan\n", id="accuracy-nan"),
        pytest.param("Accuracy at step 10: 1.5\n", id="accuracy-above-one"),
        pytest.param("Accuracy at step 10: 0.9 (best)\n", id="trailing-words"),
        pytest.param("Test Accuracy at step 10: 0.9\n", id="not-at-line-start"),
        pytest.param("\x00\xff\ufffd" * 1000, id="binary-noise"),
        pytest.param("Accuracy at step 9" + "9" * 5000 + ": 0.9\n", id="absurd-step"),
    ],
)
def test_output_that_is_not_the_samples_gives_no_result(log: str) -> None:
    assert parse_job_result(log) is None


@pytest.mark.parametrize(
    ("window", "max_bytes", "text"),
    [
        pytest.param(b"ab\ncd\n", 6, "ab\ncd\n", id="within-the-cap"),
        pytest.param(b"ab\ncd\n", 3, "cd\n", id="cut-on-a-line-start-keeps-the-line"),
        pytest.param(b"abc\ncd\n", 5, "cd\n", id="cut-inside-a-line-drops-its-rest"),
        pytest.param("aé".encode() * 10, 4, "aé", id="one-long-line-starts-at-a-character"),
        pytest.param(b"\xff\xfe\nok\n", 6, "\ufffd\ufffd\nok\n", id="invalid-utf8-replaced"),
    ],
)
def test_the_log_tail_the_parser_gets_starts_at_a_line(
    window: bytes, max_bytes: int, text: str
) -> None:
    assert tail_text(window, max_bytes) == text
