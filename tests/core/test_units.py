"""The one memory-size parser (two dialects) and the one pair of formatters."""
from __future__ import annotations

import math

import pytest

from jobmedic.core.units import UnitError, fmt_duration, fmt_mem, mem_quantity, parse_mem_mb

MIB = 2**20


@pytest.mark.parametrize(("value", "dialect", "kw", "mb"), [
    # Slurm: binary units, 4000M is 4000 MiB
    ("4000M", "slurm", {}, 4000.0),
    ("4G", "slurm", {}, 4096.0),
    ("4g", "slurm", {}, 4096.0),
    ("4GB", "slurm", {}, 4096.0),
    ("4GiB", "slurm", {}, 4096.0),
    ("1.5T", "slurm", {}, 1.5 * 1024**2),
    ("512K", "slurm", {}, 0.5),
    ("1P", "slurm", {}, 1024.0**3),
    ("4000", "slurm", {}, 4000.0),  # ReqMem without a unit: M
    ("1048576", "slurm", {"default_unit": "B"}, 1.0),  # MaxRSS without a unit: bytes
    ("3000Mc", "slurm", {"cpus": 4}, 12000.0),  # per CPU
    ("48000Mn", "slurm", {"nodes": 2}, 96000.0),  # per node
    ("3000Mc", "slurm", {}, 3000.0),  # per CPU, count unknown
    ("0n", "slurm", {}, 0.0),
    ("Unknown", "slurm", {}, None),
    ("", "slurm", {}, None),
    (None, "slurm", {}, None),
    (2048, "slurm", {}, 2048.0),
    # Kubernetes: K/M/G/T decimal, Ki/Mi/Gi binary, a bare number is bytes
    ("4000M", "k8s", {}, 4e9 / MIB),
    ("8G", "k8s", {}, 8e9 / MIB),
    ("64Gi", "k8s", {}, 65536.0),
    ("512Mi", "k8s", {}, 512.0),
    ("1Ti", "k8s", {}, 1024.0**2),
    ("100k", "k8s", {}, 1e5 / MIB),
    ("1048576", "k8s", {}, 1.0),
    ("1e9", "k8s", {}, 1e9 / MIB),
    (None, "k8s", {}, None),
    ("", "k8s", {}, None),
])
def test_parse_mem_mb(value, dialect, kw, mb):
    got = parse_mem_mb(value, dialect, **kw)
    assert (got is None and mb is None) or math.isclose(got, mb, rel_tol=1e-12)


def test_the_same_letters_differ_by_dialect():
    """The defect of issue 10: "4000M" was 4000 MB in one place and 3815 in another."""
    assert parse_mem_mb("4000M", "slurm") == 4000.0
    assert round(parse_mem_mb("4000M", "k8s"), 1) == 3814.7
    assert parse_mem_mb("4Gi", "slurm") == parse_mem_mb("4Gi", "k8s") == 4096.0


@pytest.mark.parametrize(("value", "dialect"), [
    ("lots", "slurm"), ("4X", "slurm"), ("-4G", "slurm"), ("4 G B c", "slurm"),
    ("lots", "k8s"), ("4GB", "k8s"), ("64gi", "k8s"),
])
def test_parse_mem_mb_refuses_what_is_not_a_size(value, dialect):
    with pytest.raises(UnitError):
        parse_mem_mb(value, dialect)
    assert issubclass(UnitError, ValueError)


def test_unknown_dialect():
    with pytest.raises(ValueError, match="dialect"):
        parse_mem_mb("4G", "pbs")  # type: ignore[arg-type]


@pytest.mark.parametrize(("mb", "dialect", "req", "text"), [
    (8192, "slurm", False, "8G"),
    (8090, "slurm", False, "7.9G"),
    (16384, "k8s", False, "16Gi"),
    (512, "slurm", False, "512M"),
    (512, "k8s", False, "512Mi"),
    (None, "slurm", False, "?"),
    (5300, "slurm", True, "6G"),  # a request: whole units, rounded up
    (8192, "slurm", True, "8G"),
    (700.2, "slurm", True, "701M"),
    (5300, "k8s", True, "6Gi"),
])
def test_fmt_mem(mb, dialect, req, text):
    assert fmt_mem(mb, dialect, request=req) == text


@pytest.mark.parametrize("dialect", ["slurm", "k8s"])
@pytest.mark.parametrize("mb", [512.0, 4096.0, 65536.0, 1024.0**2])
def test_fmt_mem_round_trips_through_the_parser(mb, dialect):
    assert parse_mem_mb(fmt_mem(mb, dialect), dialect) == mb
    assert parse_mem_mb(mem_quantity(mb), "k8s") == mb


@pytest.mark.parametrize(("s", "req", "text"), [
    (3605, False, "01:00:05"),
    (5400, False, "01:30:00"),
    (90000, False, "1-01:00:00"),
    (0, False, "00:00:00"),
    (None, False, "?"),
    (3605, True, "01:01:00"),  # a time limit to ask for: whole minutes, rounded up
    (10, True, "00:01:00"),
    (172800, True, "2-00:00:00"),
])
def test_fmt_duration(s, req, text):
    assert fmt_duration(s, request=req) == text
