"""Password-protected packages (dtexec /Decrypt): the whole-file form checked against a package
SSIS 2016 saved with EncryptAllWithPassword (its project publishes the password), and the
element form with packages encrypted here by an independent implementation of the same scheme."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from dtsx.engine.errors import PackageLoadError
from dtsx.engine.loader import load, load_bytes

from tests._shared import require_shared

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    except ImportError:
        from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES  # type: ignore[no-redef]

SSIS_2016 = (
    "rtumaykin_ssis-build_example_SampleSSISProjectSQL2016_SampleSSISProject_Package_221.dtsx"
)
SSIS_2016_PASSWORD = "ssis123"  # "password = ssis123" in the project's own description
PASSWORD = "Nightly-Job-7"
XMLENC = "http://www.w3.org/2001/04/xmlenc#"


def _encrypted_data(plain: str, password: str) -> str:
    """An EncryptedData element as SSIS writes one: 7-byte Salt (unused by the key), IV that also
    opens the cipher text, Triple-DES-CBC under CryptDeriveKey(SHA-1(password))."""
    digest = hashlib.sha1(password.encode()).digest().ljust(64, b"\0")
    key = (
        hashlib.sha1(bytes(b ^ 0x36 for b in digest)).digest()
        + hashlib.sha1(bytes(b ^ 0x5C for b in digest)).digest()
    )[:24]
    salt, iv = os.urandom(7), os.urandom(8)
    data = plain.encode()
    pad = 8 - len(data) % 8
    data += os.urandom(pad - 1) + bytes(
        [pad]
    )  # random filler, the count last (as SSIS's files end)
    encryptor = Cipher(TripleDES(key), modes.CBC(iv)).encryptor()
    cipher = iv + encryptor.update(data) + encryptor.finalize()
    b64 = base64.b64encode
    return (
        f'<EncryptedData Type="{XMLENC}Element" Salt="{b64(salt).decode()}" IV="{b64(iv).decode()}" '
        f'xmlns="{XMLENC}"><EncryptionMethod Algorithm="{XMLENC}tripledes-cbc"/><CipherData>'
        f"<CipherValue>{b64(cipher).decode()}</CipherValue></CipherData></EncryptedData>"
    )


# The declaration and the root share line 1, so that the decrypted text of the whole-file form
# keeps every element on the line it has here.
PLAIN = """<?xml version="1.0"?><DTS:Executable xmlns:DTS="www.microsoft.com/SqlServer/Dts" DTS:refId="Package" DTS:CreationName="Microsoft.Package"
  DTS:DTSID="{6D3B7E0A-1C2B-4E57-9B1A-2F9E3C4D5A01}" DTS:ExecutableType="Microsoft.Package" DTS:ObjectName="Protected"
  DTS:ProtectionLevel="3">
  <DTS:Property DTS:Name="PackageFormatVersion">8</DTS:Property>
  <DTS:ConnectionManagers>
    <DTS:ConnectionManager DTS:refId="Package.ConnectionManagers[Input]" DTS:CreationName="FILE"
      DTS:DTSID="{6D3B7E0A-1C2B-4E57-9B1A-2F9E3C4D5A02}" DTS:ObjectName="Input">
      <DTS:ObjectData><DTS:ConnectionManager DTS:ConnectionString="/srv/in/today.csv" /></DTS:ObjectData>
    </DTS:ConnectionManager>
  </DTS:ConnectionManagers>
  <DTS:Variables>
    <DTS:Variable DTS:CreationName="" DTS:DTSID="{6D3B7E0A-1C2B-4E57-9B1A-2F9E3C4D5A03}" DTS:Namespace="User"
      DTS:ObjectName="Greeting"><DTS:VariableValue DTS:DataType="8">hello</DTS:VariableValue></DTS:Variable>
  </DTS:Variables>
  <DTS:Executables>
    <DTS:Executable DTS:refId="Package\\Set" DTS:CreationName="Microsoft.ExpressionTask"
      DTS:DTSID="{6D3B7E0A-1C2B-4E57-9B1A-2F9E3C4D5A04}" DTS:ExecutableType="Microsoft.ExpressionTask" DTS:ObjectName="Set">
      <DTS:ObjectData><ExpressionTask Expression="@[User::Greeting] = @[User::Greeting] + &quot; world&quot;" /></DTS:ObjectData>
    </DTS:Executable>
  </DTS:Executables>
</DTS:Executable>
"""
INNER = '<DTS:ConnectionManager DTS:ConnectionString="/srv/in/today.csv" />'


def _encrypt_all(plain: str, password: str) -> bytes:
    body = plain.split("?>", 1)[1]
    return ('<?xml version="1.0"?>' + _encrypted_data(body, password)).encode()


def _encrypt_inner(plain: str, password: str) -> bytes:
    # EncryptSensitiveWithPassword: the connection manager's inner element is what SSIS replaces.
    return plain.replace(INNER, _encrypted_data(INNER, password)).encode()


def test_a_package_ssis_encrypted_whole_decrypts_with_its_password() -> None:
    path = require_shared("corpus", "dtsx", SSIS_2016)
    package = load(path, password=SSIS_2016_PASSWORD)
    assert package.name == "Package 221" and package.protection_level == 3
    assert [e.name for e in package.executables] == [
        "Data Flow Task",
        "PackagePart1",
        "Script Task",
    ]
    assert {c.name for c in package.connections} >= {"dest", "source"}


@pytest.mark.parametrize("password", [None, "ssis124", "ssis1234"])
def test_without_the_right_password_the_error_says_what_to_give(password: str | None) -> None:
    path = require_shared("corpus", "dtsx", SSIS_2016)
    with pytest.raises(PackageLoadError) as info:
        load(path, password=password)
    text = str(info.value)
    assert info.value.file == str(path) and info.value.line == 1
    assert "--decrypt-env" in text
    assert password is None or password not in text


def test_whole_package_encryption_round_trips_to_the_same_model() -> None:
    plain = load_bytes(PLAIN.encode(), file="p.dtsx")
    decrypted = load_bytes(_encrypt_all(PLAIN, PASSWORD), file="p.dtsx", password=PASSWORD)
    assert decrypted.model_dump() == plain.model_dump()


def test_an_encrypted_element_is_decrypted_in_place_with_its_namespaces() -> None:
    data = _encrypt_inner(PLAIN, PASSWORD)
    without = load_bytes(data, file="p.dtsx")
    assert without.connections[0].connection_string is None  # hidden until the password is given
    package = load_bytes(data, file="p.dtsx", password=PASSWORD)
    assert package.connections[0].connection_string == "/srv/in/today.csv"
    assert package.model_dump() == load_bytes(PLAIN.encode(), file="p.dtsx").model_dump()


def test_a_wrong_password_for_an_element_names_its_line() -> None:
    with pytest.raises(PackageLoadError) as info:
        load_bytes(_encrypt_inner(PLAIN, PASSWORD), file="p.dtsx", password="not-it")
    line = PLAIN[: PLAIN.index(INNER)].count("\n") + 1
    assert info.value.line == line and "not-it" not in str(info.value)


def _dtsx(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    code = "import sys; from dtsx.engine.cli import main; sys.argv[0] = 'dtsx'; main(sys.argv[1:])"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_cli_takes_the_password_from_the_environment_or_a_file_never_the_command_line(
    tmp_path: Path,
) -> None:
    package = tmp_path / "protected.dtsx"
    package.write_bytes(_encrypt_all(PLAIN, PASSWORD))
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)  # a password file others can read is refused, as ssh refuses a key
    assert (
        _dtsx(
            "validate", "--decrypt-env", "PKG_PW", str(package), env={"PKG_PW": PASSWORD}
        ).returncode
        == 0
    )
    ran = _dtsx("run", "--decrypt-file", str(secret), str(package))
    assert ran.returncode == 0, ran.stderr
    windows = (
        tmp_path / "password-crlf.txt"
    )  # saved by a Windows editor: the CRLF is not part of it
    windows.write_bytes(PASSWORD.encode() + b"\r\n")
    windows.chmod(0o600)
    assert _dtsx("validate", "--decrypt-file", str(windows), str(package)).returncode == 0
    unset = _dtsx("show", "--decrypt-env", "NO_SUCH_VARIABLE_HERE", str(package))
    assert unset.returncode == 6 and "NO_SUCH_VARIABLE_HERE" in unset.stderr
    wrong = _dtsx(
        "validate", "--decrypt-env", "PKG_PW", str(package), env={"PKG_PW": "Nightly-Job-8"}
    )
    assert wrong.returncode == 5 and "Nightly-Job-8" not in wrong.stdout + wrong.stderr


def test_dtexec_decrypt_works_and_warns_that_argv_is_visible(tmp_path: Path) -> None:
    package = tmp_path / "protected.dtsx"
    package.write_bytes(_encrypt_all(PLAIN, PASSWORD))
    done = _dtsx("exec", "/F", str(package), "/De", PASSWORD, "/Va")
    assert done.returncode == 0, done.stderr
    assert (
        "visible in process listings" in done.stderr and PASSWORD not in done.stdout + done.stderr
    )


PARAMS = """<?xml version="1.0"?>
<SSIS:Parameters xmlns:SSIS="www.microsoft.com/SqlServer/SSIS">
  <SSIS:Parameter SSIS:Name="SmtpPassword">
    <SSIS:Properties>
      <SSIS:Property SSIS:Name="ID">{{6D3B7E0A-1C2B-4E57-9B1A-2F9E3C4D5A10}}</SSIS:Property>
      <SSIS:Property SSIS:Name="Sensitive">1</SSIS:Property>
      <SSIS:Property SSIS:Name="Required">0</SSIS:Property>
      {value}
      <SSIS:Property SSIS:Name="DataType">18</SSIS:Property>
    </SSIS:Properties>
  </SSIS:Parameter>
</SSIS:Parameters>
"""
SSIS_NS = "www.microsoft.com/SqlServer/SSIS"


def _attribute_form(plain: str, password: str) -> str:
    """A sensitive value as a project saved with EncryptSensitiveWithPassword holds it: the
    element keeps its name and Sensitive flag, gains Salt and IV, and its text is the cipher
    of the whole original element (the form of the PasswordVerifier in a real .dtproj)."""
    data = _encrypted_data(plain, password)
    salt = data.split('Salt="')[1].split('"')[0]
    iv = data.split('IV="')[1].split('"')[0]
    cipher = data.split("<CipherValue>")[1].split("</CipherValue>")[0]
    return (
        f'<SSIS:Property SSIS:Name="Value" SSIS:Sensitive="1" SSIS:Salt="{salt}" SSIS:IV="{iv}">'
        f"{cipher}</SSIS:Property>"
    )


def test_a_sensitive_project_parameter_is_decrypted_and_stays_masked(tmp_path: Path) -> None:
    from dtsx.engine.render import show_document, show_text

    secret = "Mail-Relay-Pass-42"
    original = f'<SSIS:Property SSIS:Name="Value" SSIS:Sensitive="1" xmlns:SSIS="{SSIS_NS}">{secret}</SSIS:Property>'
    (tmp_path / "Project.params").write_text(
        PARAMS.format(value=_attribute_form(original, PASSWORD))
    )
    (tmp_path / "p.dtsx").write_text(PLAIN)
    locked = load(tmp_path / "p.dtsx")
    [param] = locked.project_parameters
    assert param.sensitive_unavailable and param.value is None
    package = load(tmp_path / "p.dtsx", password=PASSWORD)
    [param] = package.project_parameters
    assert (param.value, param.sensitive, param.sensitive_unavailable) == (secret, True, False)
    assert secret not in show_text(package) and secret not in repr(show_document(package))
    assert secret not in repr(param)
