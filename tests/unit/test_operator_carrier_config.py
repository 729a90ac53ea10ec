"""An SMPP operator's carrier parameters (SPEC §15): how the file says them, every error on its
key path, and the pure rules the link applies with them (TON/NPI, validity_period)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from connectors.smpp.addressing import destination_address, source_address
from connectors.smpp.times import format_absolute, format_relative, parse_time, validity_period
from smscore.config import ConfigError, parse_config
from tests.certs import TestCA, write_key

PROFILE = """
[profiles.standard]
operators = ["telia"]
"""
CREDENTIALS = 'system_id = "acme"\npassword = "secret"\n'
TELIA = '[operators.telia]\nhost = "smsc.example"\n' + CREDENTIALS


def parse(text: str, folder: Path):
    return parse_config(text + PROFILE, path=folder / "gateway.toml")


def errors_of(text: str, folder: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, folder)
    return caught.value.errors


@pytest.fixture
def pki(tmp_path):
    """A CA bundle and a client certificate it signed, with its key (mode 0600), in tmp_path."""
    ca = TestCA(tmp_path)
    cert, key = ca.issue("gateway")
    return ca.path, cert, key


# --- what the keys give -------------------------------------------------------------------------
def test_every_carrier_key_is_read(tmp_path, pki):
    ca, cert, key = pki
    telia = parse('[operators.telia]\nhosts = ["smsc-a.example:2775", "[2001:db8::5]:2776"]\n'
                  + CREDENTIALS + f'tls = true\ntls_ca = "{ca}"\ntls_cert = "{cert}"\n'
                  f'tls_key = "{key}"\naddress_range = "^4670"\nservice_type = "CMT"\n'
                  'source_ton = 2\nsource_npi = 9\ndest_ton = 0\ndest_npi = 0\nvalidity = "48h"\n',
                  tmp_path).operators["telia"]
    assert telia.hosts == (("smsc-a.example", 2775), ("2001:db8::5", 2776))
    assert (telia.host, telia.port) == ("smsc-a.example", 2775)
    assert (telia.tls_ca, telia.tls_cert, telia.tls_key) == (ca, cert, key)
    assert (telia.address_range, telia.service_type) == ("^4670", "CMT")
    assert (telia.source_ton, telia.source_npi, telia.dest_ton, telia.dest_npi) == (2, 9, 0, 0)
    assert telia.validity == 48 * 3600


def test_unset_keys_keep_todays_behaviour(tmp_path):
    telia = parse(TELIA, tmp_path).operators["telia"]
    assert telia.hosts == (("smsc.example", 2775),)
    assert (telia.tls_ca, telia.tls_cert, telia.tls_key) == (None, None, None)
    assert (telia.address_range, telia.service_type, telia.validity) == ("", "", None)
    assert (telia.source_ton, telia.source_npi, telia.dest_ton, telia.dest_npi) == (None,) * 4


def test_tls_paths_start_at_the_files_folder(tmp_path):
    TestCA(tmp_path, "carrier")
    telia = parse(TELIA + 'tls = true\ntls_ca = "carrier.pem"\n', tmp_path).operators["telia"]
    assert telia.tls_ca == tmp_path / "carrier.pem"


def test_a_changed_carrier_key_reconnects_on_reload(tmp_path):
    before = parse(TELIA, tmp_path).operators["telia"]
    for extra in ('service_type = "CMT"', "source_ton = 1", 'validity = "1h"', 'address_range = "46"',
                  'hosts = ["smsc.example:2775", "b.example:2775"]'):
        text = TELIA.replace('host = "smsc.example"\n', "") if extra.startswith("hosts") else TELIA
        assert parse(text + extra + "\n", tmp_path).operators["telia"].bind_settings() != before.bind_settings()


# --- every error, on its key path ---------------------------------------------------------------
BAD_VALUES = [
    ("source_ton = 256", "operators.telia.source_ton: must be an integer from 0 to 255, got 256"),
    ("source_npi = -1", "operators.telia.source_npi: must be an integer from 0 to 255, got -1"),
    ('dest_ton = "1"', 'operators.telia.dest_ton: must be an integer from 0 to 255, got "1"'),
    ("dest_npi = true", "operators.telia.dest_npi: must be an integer from 0 to 255, got true"),
    ('address_range = "' + "4" * 41 + '"',
     'operators.telia.address_range: must be at most 40 characters, got "' + "4" * 41 + '"'),
    ('service_type = "WAPPSH"', 'operators.telia.service_type: must be at most 5 characters, got "WAPPSH"'),
    ("service_type = 5", "operators.telia.service_type: must be a string, got 5"),
    ('validity = "100d"',
     'operators.telia.validity: must be from 1s to less than 100d (an SMPP relative time), got "100d"'),
    ('validity = "500ms"',
     'operators.telia.validity: must be from 1s to less than 100d (an SMPP relative time), got "500ms"'),
    ('validity = "0s"', 'operators.telia.validity: must be longer than zero, got "0s"'),
    ("validity = 48", None),  # a duration needs its unit: the message is smscore.durations'
]


@pytest.mark.parametrize("line, error", BAD_VALUES)
def test_a_bad_value_names_its_key(tmp_path, line, error):
    errors = errors_of(TELIA + line + "\n", tmp_path)
    if error is None:
        key = line.split(" =")[0]
        assert len(errors) == 1 and errors[0].startswith(f"operators.telia.{key}: ")
    else:
        assert errors == [error]


@pytest.mark.parametrize("hosts, error", [
    ("[]", "operators.telia.hosts: must not be empty"),
    ('"a:2775"', 'operators.telia.hosts: must be an array, got "a:2775"'),
    ('["smsc.example"]', 'operators.telia.hosts[0]: must be "host:port" with a port from 1 to 65535, '
                         'such as "smsc.example:2775", got "smsc.example"'),
    ('["a:2775", "b:0"]', 'operators.telia.hosts[1]: must be "host:port" with a port from 1 to 65535, '
                          'such as "smsc.example:2775", got "b:0"'),
    ('["a:70000"]', 'operators.telia.hosts[0]: must be "host:port" with a port from 1 to 65535, '
                    'such as "smsc.example:2775", got "a:70000"'),
    ('["a b:2775"]', 'operators.telia.hosts[0]: must be "host:port" with a port from 1 to 65535, '
                     'such as "smsc.example:2775", got "a b:2775"'),
    ('["a:2775", "a:2775"]', 'operators.telia.hosts[1]: duplicate "a:2775"'),
])
def test_bad_hosts(tmp_path, hosts, error):
    assert errors_of(f"[operators.telia]\nhosts = {hosts}\n" + CREDENTIALS, tmp_path) == [error]


def test_hosts_and_host_port_exclude_each_other(tmp_path):
    errors = errors_of(TELIA + 'port = 2776\nhosts = ["b.example:2775"]\n', tmp_path)
    assert errors == ["operators.telia.host: cannot be combined with hosts: list every address in hosts",
                      "operators.telia.port: cannot be combined with hosts: list every address in hosts"]


def test_without_host_or_hosts_host_is_required(tmp_path):
    assert errors_of("[operators.telia]\n" + CREDENTIALS, tmp_path) == ["operators.telia.host: is required"]


@pytest.mark.parametrize("line", ['hosts = ["a:2775"]', 'tls_ca = "ca.pem"', 'address_range = "46"',
                                  'service_type = "CMT"', "source_ton = 1", "dest_npi = 1",
                                  'validity = "1h"'])
def test_carrier_keys_are_for_smpp_operators_only(tmp_path, line):
    key = line.split(" =")[0]
    errors = errors_of(f'[operators.telia]\ntype = "simulated"\n{line}\n', tmp_path)
    assert errors == [f'operators.telia.{key}: only for type = "smpp"']


def test_tls_files_need_tls(tmp_path, pki):
    ca, cert, key = pki
    errors = errors_of(TELIA + f'tls_ca = "{ca}"\ntls_cert = "{cert}"\ntls_key = "{key}"\n', tmp_path)
    assert errors == [f"operators.telia.{k}: needs tls = true" for k in ("tls_ca", "tls_cert", "tls_key")]


@pytest.mark.parametrize("given, missing", [("tls_cert", "tls_key"), ("tls_key", "tls_cert")])
def test_a_client_certificate_needs_its_key_and_the_key_its_certificate(tmp_path, pki, given, missing):
    _, cert, key = pki
    path = cert if given == "tls_cert" else key
    errors = errors_of(TELIA + f'tls = true\n{given} = "{path}"\n', tmp_path)
    assert errors == [f"operators.telia.{missing}: is required with {given}: a client certificate needs both"]


def test_a_missing_file_is_named(tmp_path):
    errors = errors_of(TELIA + 'tls = true\ntls_ca = "nowhere/ca.pem"\n', tmp_path)
    assert errors == [f'operators.telia.tls_ca: cannot read "{tmp_path / "nowhere" / "ca.pem"}": '
                      "No such file or directory"]


def test_files_that_hold_no_pem_are_named(tmp_path, pki):
    _, cert, _ = pki
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    junk.chmod(0o600)
    errors = errors_of(TELIA + f'tls = true\ntls_ca = "{junk}"\ntls_cert = "{cert}"\ntls_key = "{junk}"\n',
                       tmp_path)
    assert errors == [f'operators.telia.tls_ca: "{junk}" holds no PEM certificate',
                      f'operators.telia.tls_key: "{junk}" holds no PEM private key']


def test_a_key_others_may_read_is_refused_with_what_to_do(tmp_path, pki):
    _, cert, key = pki
    key.chmod(0o640)
    errors = errors_of(TELIA + f'tls = true\ntls_cert = "{cert}"\ntls_key = "{key}"\n', tmp_path)
    assert errors == [f'operators.telia.tls_key: "{key}" may be read by group or others (mode 640): '
                      "it must be readable by the gateway only, chmod 600 it"]


def test_a_key_that_is_not_the_certificates_is_refused_without_showing_it(tmp_path, pki):
    _, cert, _ = pki
    other = write_key(ec.generate_private_key(ec.SECP256R1()), tmp_path / "other.key")
    errors = errors_of(TELIA + f'tls = true\ntls_cert = "{cert}"\ntls_key = "{other}"\n', tmp_path)
    assert errors == [f'operators.telia.tls_key: "{other}" is not the key of the certificate in "{cert}"']
    assert "PRIVATE KEY" not in "\n".join(errors)


def test_an_encrypted_key_is_refused(tmp_path, pki):
    _, cert, _ = pki
    locked = write_key(ec.generate_private_key(ec.SECP256R1()), tmp_path / "locked.key", b"pass")
    errors = errors_of(TELIA + f'tls = true\ntls_cert = "{cert}"\ntls_key = "{locked}"\n', tmp_path)
    assert errors == [f'operators.telia.tls_key: "{locked}" is encrypted: the gateway needs the key unencrypted']


# --- what the link does with them (pure) --------------------------------------------------------
@pytest.mark.parametrize("sender, ton, npi, expected", [
    ("ACME", None, None, (5, 0, "ACME")),
    ("72550", None, None, (3, 0, "72550")),
    ("+46701234567", None, None, (1, 1, "46701234567")),
    ("ACME", 1, None, (1, 0, "ACME")),
    ("72550", None, 9, (3, 9, "72550")),
    ("46701234567", 2, 8, (2, 8, "46701234567")),
    ("ACME", 0, 0, (0, 0, "ACME")),  # 0 is a value, not "unset"
    ("", None, 1, (0, 1, "")),
])
def test_an_operators_source_ton_npi_replace_the_automatic_choice(sender, ton, npi, expected):
    assert source_address(sender, ton, npi) == expected


def test_an_operators_dest_ton_npi_replace_international():
    assert destination_address("+46701234567") == (1, 1, "46701234567")
    assert destination_address("+46701234567", 0, None) == (0, 1, "46701234567")
    assert destination_address("0701234567", 2, 9) == (2, 9, "0701234567")
    assert destination_address("46701234567", None, 9) == (1, 9, "46701234567")
    assert destination_address("46701234567", 0, 0) == (0, 0, "46701234567")  # 0 is a value, not "unset"


@pytest.mark.parametrize("seconds, written", [
    (48 * 3600, "000002000000000R"),
    (90 * 60 + 5.9, "000000013005000R"),
    (99 * 86400 + 86399, "000099235959000R"),
])
def test_relative_validity_is_written_in_days_hours_minutes_seconds(seconds, written):
    assert format_relative(seconds) == written
    assert parse_time(written, 1_000_000.0) == 1_000_000.0 + int(seconds)


def test_the_earlier_of_message_expiry_and_operator_validity_wins():
    now = 1_800_000_000.0
    assert validity_period(None, None, now) == ""
    assert validity_period(None, 3600.0, now) == "000000010000000R"
    assert validity_period(now + 7200, 3600.0, now) == "000000010000000R"  # the operator's is earlier
    assert validity_period(now + 1800, 3600.0, now) == "270115083000000+"  # the message's is earlier
    assert validity_period(now + 1800, None, now) == format_absolute(now + 1800)
