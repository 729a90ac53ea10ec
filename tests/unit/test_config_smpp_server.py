"""The configuration of the SMPP server for customers' ESMEs (SPEC §13): [smpp_server] and each
account's [accounts.X.smpp]."""

from __future__ import annotations

import pytest

from smscore.config import ConfigError, ListenAddress
from tests.certs import TestCA
from tests.config_rig import BASE, MO, errors_of, parse


# --- the SMPP server for customers' ESMEs (SPEC §13) ---------------------------------------------

SMPP_SERVER = BASE + """
[smpp_server]
listen = "0.0.0.0:2775"
enquire_link = "20s"
window = 50

[accounts.acme]
api_keys = ["acme-key"]

[accounts.acme.smpp]
system_id = "acme"
password = "s3cret"
max_binds = 2
"""


def test_smpp_server_and_an_accounts_esme_credentials() -> None:
    config = parse(SMPP_SERVER)
    server = config.smpp_server
    assert (server.listen, server.tls_listen, server.enquire_link, server.window) == (
        ListenAddress("0.0.0.0", 2775), None, 20.0, 50)
    smpp = config.accounts["acme"].smpp
    assert (smpp.system_id, smpp.password, smpp.max_binds) == ("acme", "s3cret", 2)
    assert "s3cret" not in repr(smpp)


def test_no_smpp_server_section_means_none() -> None:
    config = parse(BASE)
    assert config.smpp_server is None
    assert parse(BASE + MO).accounts["acme"].smpp is None


def test_smpp_credentials_are_checked_without_showing_the_password() -> None:
    text = SMPP_SERVER.replace('password = "s3cret"', 'password = "much-too-long"')
    errors = errors_of(text.replace('system_id = "acme"', 'system_id = "a-system-id-of-20-chr"'))
    assert errors == [
        'accounts.acme.smpp.system_id: must be at most 15 characters, got "a-system-id-of-20-chr"',
        "accounts.acme.smpp.password: must be at most 8 characters (SMPP 3.4), got 13",
    ]
    assert errors_of(SMPP_SERVER.replace('password = "s3cret"\n', "")) == [
        "accounts.acme.smpp.password: is required"]


def test_a_system_id_names_one_account_and_credentials_need_a_listener() -> None:
    twice = SMPP_SERVER + """
[accounts.globex]
api_keys = ["globex-key"]
[accounts.globex.smpp]
system_id = "acme"
password = "pw"
"""
    assert errors_of(twice) == ['accounts.globex.smpp.system_id: "acme" is already the system_id of account acme']
    without = SMPP_SERVER.replace('[smpp_server]\nlisten = "0.0.0.0:2775"\nenquire_link = "20s"\nwindow = 50\n', "")
    assert errors_of(without) == ["accounts.acme.smpp: needs an [smpp_server] section to bind to"]


def test_tls_listener_needs_readable_certificate_and_key(tmp_path) -> None:
    text = BASE + '[smpp_server]\ntls_listen = "127.0.0.1:3550"\n'
    assert errors_of(text) == ["smpp_server.tls_listen: needs tls_cert and tls_key (PEM files)"]
    cert, key = TestCA(tmp_path).issue("gateway", ip="127.0.0.1")
    with_files = text + f'tls_cert = "{cert.name}"\ntls_key = "missing.key"\n'
    with pytest.raises(ConfigError) as caught:
        parse(with_files, folder=tmp_path)
    assert caught.value.errors[0].startswith(f'smpp_server.tls_key: cannot read "{tmp_path / "missing.key"}"')
    config = parse(text + f'tls_cert = "{cert.name}"\ntls_key = "{key.name}"\n', folder=tmp_path)
    assert config.smpp_server.tls_cert == cert and config.smpp_server.listen is None
    assert errors_of(BASE + "[smpp_server]\nwindow = 5\n") == [
        "smpp_server.listen: is required (or tls_listen): the address ESMEs bind to"]


@pytest.mark.parametrize("section", ["http", "smpp_server"])
def test_a_tls_key_others_may_read_or_without_its_certificate_is_refused(tmp_path, section) -> None:
    cert, key = TestCA(tmp_path).issue("gateway", ip="127.0.0.1")
    head = BASE + f'[{section}]\nlisten = "127.0.0.1:0"\n'
    assert parse(head + f'tls_cert = "{cert.name}"\ntls_key = "{key.name}"\n', folder=tmp_path)
    key.chmod(0o644)
    with pytest.raises(ConfigError) as caught:
        parse(head + f'tls_cert = "{cert.name}"\ntls_key = "{key.name}"\n', folder=tmp_path)
    assert caught.value.errors == [f'{section}.tls_key: "{key}" may be read by group or others (mode 644): '
                                   "it must be readable by the gateway only, chmod 600 it"]
    with pytest.raises(ConfigError) as caught:
        parse(head + f'tls_cert = "{cert.name}"\n', folder=tmp_path)
    assert caught.value.errors[0].startswith(f"{section}.tls_key: is required with tls_cert")


def test_a_keyword_may_push_to_the_accounts_esmes_when_it_has_credentials() -> None:
    keyword = '\n[[shortcodes]]\nnumber = "72550"\n[[keywords]]\nshortcode = "72550"\nkeyword = "ACME"\naccount = "acme"\nurl = "smpp"\n'
    config = parse(SMPP_SERVER + keyword)  # no secret needed: nothing is signed over SMPP
    assert config.keywords[0].url == "smpp"
    without = SMPP_SERVER.replace('[accounts.acme.smpp]\nsystem_id = "acme"\npassword = "s3cret"\nmax_binds = 2\n', "")
    assert errors_of(without + keyword) == [
        'keywords[0].url: "smpp" needs [accounts.acme.smpp]: the account\'s ESMEs get the MO']
    assert errors_of(SMPP_SERVER + keyword.replace('url = "smpp"', 'url = "smtp"')) == [
        'keywords[0].url: must be an http:// or https:// URL, got "smtp"']


def test_the_tls_listener_on_the_apis_address_is_an_error_on_it(tmp_path) -> None:
    cert, key = TestCA(tmp_path).issue("gateway", ip="127.0.0.1")
    text = (BASE + '[http]\nlisten = "127.0.0.1:3550"\n[smpp_server]\nlisten = "127.0.0.1:2775"\n'
            f'tls_listen = "127.0.0.1:3550"\ntls_cert = "{cert.name}"\ntls_key = "{key.name}"\n')
    with pytest.raises(ConfigError) as caught:
        parse(text, folder=tmp_path)
    assert caught.value.errors == ["smpp_server.tls_listen: the same address as http.listen (127.0.0.1:3550)"]
    with pytest.raises(ConfigError) as caught:
        parse(text.replace('tls_listen = "127.0.0.1:3550"', 'tls_listen = "127.0.0.1:2775"'), folder=tmp_path)
    assert caught.value.errors == ["smpp_server.tls_listen: the same address as smpp_server.listen (127.0.0.1:2775)"]
