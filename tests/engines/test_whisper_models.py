"""CTranslate2's CPU kernel choice (whisper_models.prefer_avx512)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nls_gateway.engines.whisper_models import prefer_avx512

AMD_ZEN4 = "flags\t\t: fpu sse2 avx avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni\n"
ZEN3 = "flags\t\t: fpu sse2 avx avx2 fma\n"


@pytest.mark.parametrize(("flags", "expected"), [(AMD_ZEN4, "AVX512"), (ZEN3, None)])
def test_avx512_is_asked_for_only_where_the_cpu_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: str, expected: str | None
) -> None:
    monkeypatch.delenv("CT2_FORCE_CPU_ISA", raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\n" + flags)
    prefer_avx512(str(cpuinfo))

    assert os.environ.get("CT2_FORCE_CPU_ISA") == expected


def test_an_explicit_choice_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CT2_FORCE_CPU_ISA", "AVX2")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(AMD_ZEN4)
    prefer_avx512(str(cpuinfo))

    assert os.environ["CT2_FORCE_CPU_ISA"] == "AVX2"


def test_no_cpuinfo_leaves_the_library_to_choose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CT2_FORCE_CPU_ISA", raising=False)
    prefer_avx512(str(tmp_path / "missing"))

    assert "CT2_FORCE_CPU_ISA" not in os.environ
