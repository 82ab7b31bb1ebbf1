"""Loading a plain package imports no decryption machinery: cryptography and xml.sax (which
pulls in urllib and http.client) are imported only when a package is decrypted."""

from __future__ import annotations

import subprocess
import sys

from tests._shared import REPO_ROOT

_HEAVY = ("cryptography", "xml.sax", "urllib.request", "http.client")


def _imported_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {_HEAVY!r} if m in sys.modules))"
    ran = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        check=True,
    )
    return ran.stdout.split()


def test_loading_a_plain_package_imports_no_decryption_machinery() -> None:
    sample = REPO_ROOT / "samples" / "hello-mail.dtsx"
    code = f"from dtsx.engine.loader import load\nload({str(sample)!r})"
    assert _imported_after(code) == []


def test_decrypting_imports_it_when_needed() -> None:
    # A wrong password still runs the cipher: the import happens and the error is the loader's.
    code = (
        "from dtsx.engine.protection import decrypt_payload\n"
        "from dtsx.engine.errors import PackageLoadError\n"
        "try:\n"
        "    decrypt_payload({'IV': 'AAAAAAAAAAA='}, 'AAAAAAAAAAAAAAAAAAAAAA==', 'pw',"
        " file='p.dtsx', line=1)\n"
        "except PackageLoadError:\n"
        "    pass\n"
    )
    assert "cryptography" in _imported_after(code)
