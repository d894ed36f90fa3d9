"""Backfill's processes keep the memory they free for reuse (glibc): see `backfill.keep_freed_memory`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from zag.logs import backfill
from zag.providers.base import HistorySource

# In a fresh interpreter (the setting is for the whole process): a block of 8 MiB, freed, is still held
# by malloc for the next one (its `keepcost`, the free top of the heap), not given back to the kernel.
_PROBE = textwrap.dedent("""
    import ctypes, sys
    from zag.logs import backfill

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallinfo2.restype = MallInfo2
    if sys.argv[1] == "tuned":
        backfill.keep_freed_memory()
    block = libc.malloc(8 << 20)
    ctypes.memset(block, 1, 8 << 20)
    libc.free(block)
    print(libc.mallinfo2().keepcost)
""")


def _kept_after_free(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=60)
    if done.returncode != 0 and "mallinfo2" in done.stderr:
        pytest.skip("no glibc mallinfo2 here")
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_freed_blocks_stay_with_the_process() -> None:
    assert _kept_after_free("default") < 8 << 20   # glibc's default: such a block goes back to the kernel
    assert _kept_after_free("tuned") >= 8 << 20


def test_the_import_tunes_malloc_before_forking_its_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(backfill, "keep_freed_memory", lambda: calls.append("tuned"))

    class Workers:
        def __init__(self, *args: object) -> None:
            calls.append("forked")
            raise KeyboardInterrupt

    monkeypatch.setattr(backfill, "_Workers", Workers)
    source = HistorySource(source_key="k", provider_session_id="k", paths=(), fingerprint="f")
    job = backfill.ImportJob("p", source, "s", None, backfill.MODE_NEW)
    with pytest.raises(KeyboardInterrupt):
        backfill._execute(SimpleNamespace(name="p"), [[job], [job]], 2, None, None,  # type: ignore[arg-type]
                          backfill.ProviderSummary("p"))
    assert calls == ["tuned", "forked"]
