"""The configuration schema, its loader's error messages, and the generated documents."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from hirondelle.config import (
    ConfigError,
    Endpoint,
    ListenSettings,
    Settings,
    config_reference_markdown,
    load_settings,
    parse_size,
    render_config,
)

REPOSITORY = Path(__file__).resolve().parent.parent


def load(tmp_path: Path, text: str, environ: Mapping[str, str] | None = None) -> Settings:
    """Write ``text`` (dedented) as the data directory's hirondelle.toml and load it."""
    (tmp_path / "hirondelle.toml").write_text(textwrap.dedent(text), encoding="utf-8")
    return load_settings(tmp_path, environ={} if environ is None else environ)


def error_of(tmp_path: Path, text: str, environ: Mapping[str, str] | None = None) -> str:
    """The message of the ConfigError that loading ``text`` must raise."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, environ)
    return str(caught.value)


# --------------------------------------------------------------------------- loading


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path, '[server]\nhostname = "Mail.Example.org"\n')
    assert settings.server.hostname == "mail.example.org"
    assert settings.server.default_domain is None
    assert settings.listen.enabled() == {}
    assert settings.limits.max_message_size == 50 * 1024 * 1024
    assert settings.limits.max_recipients == 100
    assert settings.limits.imap_idle_timeout_seconds == 1800
    assert settings.limits.max_command_length == 65536
    assert settings.identity.password_min_length == 10
    assert settings.store.sqlite_synchronous == "full"
    assert settings.tls.minimum_version == "1.2"
    assert settings.data_dir == tmp_path.resolve()


def test_empty_file_is_valid(tmp_path: Path) -> None:
    assert load(tmp_path, "").server.hostname == "localhost"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={})
    data = tmp_path.resolve()
    assert str(caught.value) == (
        f"no configuration at {data}/hirondelle.toml; run `hirondelle --data {data} init` first"
    )


def test_default_paths_are_under_the_data_directory(tmp_path: Path) -> None:
    settings = load(tmp_path, "")
    data = tmp_path.resolve()
    assert settings.database_url() == f"sqlite:///{data}/hirondelle.sqlite3"
    assert settings.blob_dir() == data / "blobs"
    assert settings.certificate_path() == data / "tls" / "cert.pem"
    assert settings.key_path() == data / "tls" / "key.pem"


def test_configured_paths(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
        [store]
        database = "sqlite:///db/main.sqlite3"
        blobs = "/srv/blobs"
        [tls]
        certificate = "/etc/ssl/fullchain.pem"
        key = "private/key.pem"
        """,
    )
    data = tmp_path.resolve()
    assert settings.database_url() == f"sqlite:///{data}/db/main.sqlite3"
    assert settings.blob_dir() == Path("/srv/blobs")
    assert settings.certificate_path() == Path("/etc/ssl/fullchain.pem")
    assert settings.key_path() == data / "private" / "key.pem"


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("postgres://hirondelle@db/mail", "postgresql+psycopg://hirondelle@db/mail"),
        ("postgresql://u:p@db:5433/mail", "postgresql+psycopg://u:p@db:5433/mail"),
        ("postgresql+psycopg://u@db/mail", "postgresql+psycopg://u@db/mail"),
        ("sqlite:////var/lib/h.sqlite3", "sqlite:////var/lib/h.sqlite3"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
    ],
)
def test_database_urls(tmp_path: Path, configured: str, expected: str) -> None:
    settings = load(tmp_path, f'[store]\ndatabase = "{configured}"\n')
    assert settings.database_url() == expected


def test_unsupported_database(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[store]\ndatabase = "mysql://u@h/db"\n') == (
        'hirondelle.toml line 2: [store] database = "mysql://u@h/db": '
        'unsupported database "mysql": use sqlite:/// or postgresql://'
    )


# --------------------------------------------------------------------------- endpoints


def test_listeners_in_schema_order(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
        [listen]
        https = "0.0.0.0:443"
        imap = "127.0.0.1:0"
        smtp = "[::]:25"
        """,
    )
    assert settings.listen.enabled() == {
        "smtp": Endpoint("::", 25),
        "imap": Endpoint("127.0.0.1", 0),
        "https": Endpoint("0.0.0.0", 443),
    }


def test_port_zero_and_ipv6(tmp_path: Path) -> None:
    settings = load(tmp_path, '[listen]\nimap = "[::1]:0"\npop3 = "localhost:1110"\n')
    assert settings.listen.imap == Endpoint("::1", 0)
    assert str(settings.listen.imap) == "[::1]:0"
    assert settings.listen.pop3 is not None
    assert str(settings.listen.pop3) == "localhost:1110"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("127.0.0.1:99999", "port must be between 0 and 65535"),
        ("127.0.0.1", 'expected "host:port", e.g. "0.0.0.0:143" or "[::1]:143"'),
        ("::1:143", 'put an IPv6 address in brackets, e.g. "0.0.0.0:143" or "[::1]:143"'),
        ("[::1:143", 'missing "]" after the IPv6 address, e.g. "0.0.0.0:143" or "[::1]:143"'),
        ("[nope]:143", '"nope" is not an IPv6 address'),
        ("host:abc", 'port "abc" is not a number'),
        (":143", 'missing host before the port, e.g. "0.0.0.0:143" or "[::1]:143"'),
        ("300.1.1.1:25", '"300.1.1.1" is not a valid IPv4 address'),
        ("bad_host!:25", '"bad_host!" is not a valid host name'),
    ],
)
def test_bad_endpoints(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Endpoint.parse(text)
    assert str(caught.value) == message


def test_bad_port_names_line_section_key_and_value(tmp_path: Path) -> None:
    text = """\
        # Hirondelle
        [server]
        hostname = "mail.example.org"

        [listen]
        smtp = "0.0.0.0:25"
        imap = "127.0.0.1:99999"
        """
    assert error_of(tmp_path, text) == (
        'hirondelle.toml line 7: [listen] imap = "127.0.0.1:99999": '
        "port must be between 0 and 65535"
    )


def test_endpoint_must_be_a_string(tmp_path: Path) -> None:
    assert error_of(tmp_path, "[listen]\nimap = 143\n") == (
        'hirondelle.toml line 2: [listen] imap = 143: must be a string "host:port", '
        'e.g. "0.0.0.0:143"'
    )


def test_two_listeners_on_one_endpoint(tmp_path: Path) -> None:
    text = '[server]\n[listen]\nimap = "0.0.0.0:143"\npop3 = "0.0.0.0:143"\n'
    assert error_of(tmp_path, text) == (
        'hirondelle.toml line 2: [listen]: imap and pop3 both use "0.0.0.0:143"'
    )


def test_port_zero_may_be_shared() -> None:
    listen = ListenSettings.model_validate({"imap": "127.0.0.1:0", "pop3": "127.0.0.1:0"})
    assert list(listen.enabled()) == ["imap", "pop3"]


# --------------------------------------------------------------------------- errors


def test_unknown_key_with_suggestion(tmp_path: Path) -> None:
    text = '[server]\n[listen]\nimapp = "0.0.0.0:143"\n'
    assert error_of(tmp_path, text) == (
        'hirondelle.toml line 3: unknown key "imapp" in [listen] (did you mean "imap"?)'
    )


def test_unknown_key_without_suggestion(tmp_path: Path) -> None:
    assert error_of(tmp_path, "[limits]\nfrobnicate = 3\n") == (
        'hirondelle.toml line 2: unknown key "frobnicate" in [limits]'
    )


def test_unknown_section(tmp_path: Path) -> None:
    text = '[server]\nhostname = "a.example"\n\n[lissten]\nimap = "0.0.0.0:143"\n'
    assert error_of(tmp_path, text) == (
        "hirondelle.toml line 4: unknown section [lissten] (did you mean [listen]?)"
    )


def test_key_outside_any_section(tmp_path: Path) -> None:
    assert error_of(tmp_path, 'hostname = "a.example"\n') == (
        'hirondelle.toml line 1: unknown key "hostname" outside any section '
        "(it belongs in [server])"
    )


def test_data_dir_cannot_come_from_the_file(tmp_path: Path) -> None:
    assert error_of(tmp_path, 'data_dir = "/tmp"\n') == (
        'hirondelle.toml line 1: unknown key "data_dir" outside any section'
    )


def test_section_given_as_a_value(tmp_path: Path) -> None:
    assert error_of(tmp_path, "\nlimits = 5\n") == (
        'hirondelle.toml line 2: "limits" must be a section [limits], not a value'
    )


def test_syntax_error_has_its_line(tmp_path: Path) -> None:
    text = '[server]\nhostname = "a.example"\n\n[listen\n'
    assert error_of(tmp_path, text) == (
        "hirondelle.toml line 4: TOML syntax error: Expected ']' at the end of a table "
        "declaration (column 8)"
    )


def test_invalid_utf8_has_its_line(tmp_path: Path) -> None:
    (tmp_path / "hirondelle.toml").write_bytes(b'[server]\nhostname = "caf\xe9"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={})
    assert str(caught.value) == "hirondelle.toml line 2: not valid UTF-8"


def test_type_and_range_errors_are_all_reported_in_line_order(tmp_path: Path) -> None:
    text = """\
        [limits]
        max_recipients = "ten"
        imap_idle_timeout_seconds = 5
        [store]
        sqlite_synchronous = "off"
        [server]
        hostname = 7
        """
    assert error_of(tmp_path, text).splitlines() == [
        'hirondelle.toml line 2: [limits] max_recipients = "ten": must be a whole number',
        "hirondelle.toml line 3: [limits] imap_idle_timeout_seconds = 5: must be at least 60",
        'hirondelle.toml line 5: [store] sqlite_synchronous = "off": '
        'must be one of "full" or "normal"',
        "hirondelle.toml line 7: [server] hostname = 7: must be a string",
    ]


def test_dotted_keys_and_inline_tables_are_located(tmp_path: Path) -> None:
    text = """\
        [server]
        hostname = "a.example"
        listen.imap = "0.0.0.0:1"
        """
    # `listen.imap` under [server] is the key server.listen: unknown in [server].
    assert error_of(tmp_path, text) == ('hirondelle.toml line 3: unknown key "listen" in [server]')
    text = """\
        limits.max_recipients = 0
        listen = { imap = "0.0.0.0:70000" }
        """
    assert error_of(tmp_path, text).splitlines() == [
        "hirondelle.toml line 1: [limits] max_recipients = 0: must be at least 1",
        'hirondelle.toml line 2: [listen] imap = "0.0.0.0:70000": port must be between 0 and 65535',
    ]


def test_multiline_strings_do_not_confuse_line_numbers(tmp_path: Path) -> None:
    text = '[store]\nblobs = """\nimap = 1\n"""\n[listen]\nimap = "x"\n'
    assert error_of(tmp_path, text).startswith('hirondelle.toml line 6: [listen] imap = "x"')


def test_bad_host_name(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[server]\nhostname = "mail example"\n') == (
        'hirondelle.toml line 2: [server] hostname = "mail example": '
        '"mail example" is not a valid host name'
    )


def test_minimum_version_as_number(tmp_path: Path) -> None:
    assert load(tmp_path, "[tls]\nminimum_version = 1.3\n").tls.minimum_version == "1.3"


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("50M", 52428800),
        ("2G", 2 * 1024**3),
        ("512K", 512 * 1024),
        ("1T", 1024**4),
        ("50m", 52428800),
        ("50MB", 52428800),
        ("50 MiB", 52428800),
        ("1000", 1000),
        (4096, 4096),
    ],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "1.5G", "-1", "50X", "ten"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


def test_size_in_file(tmp_path: Path) -> None:
    settings = load(tmp_path, '[limits]\nmax_message_size = "25M"\n')
    assert settings.limits.max_message_size == 25 * 1024 * 1024
    assert load(tmp_path, "[limits]\nmax_message_size = 1000\n").limits.max_message_size == 1000
    assert error_of(tmp_path, '[limits]\nmax_message_size = "25Q"\n') == (
        'hirondelle.toml line 2: [limits] max_message_size = "25Q": '
        'expected a whole number with an optional unit K, M, G or T, e.g. "50M"'
    )


# --------------------------------------------------------------------------- environment


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        '[listen]\nimap = "0.0.0.0:143"\npop3 = "0.0.0.0:110"\n',
        {
            "HIRONDELLE_LISTEN_IMAP": "127.0.0.1:1143",
            "HIRONDELLE_LISTEN_POP3": "",
            "HIRONDELLE_STORE_DATABASE": "postgresql://h@db/mail",
            "HIRONDELLE_LIMITS_MAX_MESSAGE_SIZE": "10M",
            "HIRONDELLE_LIMITS_MAX_RECIPIENTS": "20",
            "HIRONDELLE_SERVER_HOSTNAME": "env.example.org",
            "HIRONDELLE_DATA": "/somewhere",  # the CLI's variable, not a section
            "PATH": "/bin",
        },
    )
    assert settings.listen.enabled() == {"imap": Endpoint("127.0.0.1", 1143)}
    assert settings.store.database == "postgresql+psycopg://h@db/mail"
    assert settings.limits.max_message_size == 10 * 1024 * 1024
    assert settings.limits.max_recipients == 20
    assert settings.server.hostname == "env.example.org"


def test_environment_fills_a_section_missing_from_the_file(tmp_path: Path) -> None:
    settings = load(tmp_path, "", {"HIRONDELLE_TLS_MINIMUM_VERSION": "1.3"})
    assert settings.tls.minimum_version == "1.3"


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    assert error_of(tmp_path, "", {"HIRONDELLE_LISTEN_IMAP": "127.0.0.1:99999"}) == (
        'environment variable HIRONDELLE_LISTEN_IMAP="127.0.0.1:99999": '
        "port must be between 0 and 65535"
    )
    assert error_of(tmp_path, "", {"HIRONDELLE_LIMITS_MAX_RECIPIENTS": "many"}) == (
        'environment variable HIRONDELLE_LIMITS_MAX_RECIPIENTS="many": must be a whole number'
    )
    assert error_of(tmp_path, "", {"HIRONDELLE_LIMITS_MAX_RECIPIENTS": "0"}) == (
        'environment variable HIRONDELLE_LIMITS_MAX_RECIPIENTS="0": must be at least 1'
    )


def test_unknown_environment_key_and_near_miss_section(tmp_path: Path) -> None:
    assert error_of(
        tmp_path,
        "",
        {"HIRONDELLE_LISTEN_IMAPP": "127.0.0.1:1", "HIRONDELLE_LISTN_IMAP": "127.0.0.1:1"},
    ).splitlines() == [
        'environment variable HIRONDELLE_LISTEN_IMAPP: unknown key "imapp" in [listen] '
        '(did you mean "imap"?)',
        "environment variable HIRONDELLE_LISTN_IMAP: unknown section [listn] "
        "(did you mean [listen]?)",
    ]


def test_file_and_environment_errors_together(tmp_path: Path) -> None:
    message = error_of(
        tmp_path, "[listen]\nimap = 1\n", {"HIRONDELLE_LIMITS_MAX_MESSAGE_SIZE": "big"}
    )
    assert message.splitlines() == [
        'hirondelle.toml line 2: [listen] imap = 1: must be a string "host:port", '
        'e.g. "0.0.0.0:143"',
        'environment variable HIRONDELLE_LIMITS_MAX_MESSAGE_SIZE="big": '
        'expected a whole number with an optional unit K, M, G or T, e.g. "50M"',
    ]


def test_environment_booleans() -> None:
    # No boolean key exists yet; the conversion used for one is checked directly.
    from pydantic.fields import FieldInfo

    from hirondelle.config import _env_value

    info = FieldInfo.from_annotation(bool)
    for word in ("on", "TRUE", "1", "yes"):
        assert _env_value(info, word) is True
    for word in ("off", "false", "0", "No"):
        assert _env_value(info, word) is False
    with pytest.raises(ValueError, match="must be on/off, true/false, yes/no or 1/0"):
        _env_value(info, "maybe")


# --------------------------------------------------------------------------- documents


def test_render_config_round_trips(tmp_path: Path) -> None:
    text = render_config(
        hostname="mail.example.org",
        default_domain="example.org",
        listen={"smtp": "0.0.0.0:25", "imaps": "[::]:993", "https": "127.0.0.1:0"},
        database="postgres://hirondelle@localhost/hirondelle",
    )
    settings = load(tmp_path, text)
    assert settings.server.hostname == "mail.example.org"
    assert settings.server.default_domain == "example.org"
    assert settings.listen.enabled() == {
        "smtp": Endpoint("0.0.0.0", 25),
        "imaps": Endpoint("::", 993),
        "https": Endpoint("127.0.0.1", 0),
    }
    assert settings.store.database == "postgresql+psycopg://hirondelle@localhost/hirondelle"
    # Everything else is commented out at its default.
    assert settings.limits == Settings(data_dir=tmp_path).limits
    assert settings.tls == Settings(data_dir=tmp_path).tls
    assert '# max_message_size = "50M"' in text


def test_render_config_minimal(tmp_path: Path) -> None:
    text = render_config(hostname="localhost", default_domain=None, listen={})
    settings = load(tmp_path, text)
    assert settings.listen.enabled() == {}
    assert settings.store.database == ""
    assert settings.server.default_domain is None


def test_render_config_refuses_what_would_not_load() -> None:
    with pytest.raises(ValueError, match="unknown listeners: imapp"):
        render_config(hostname="a.example", default_domain=None, listen={"imapp": "0.0.0.0:1"})
    with pytest.raises(ValueError, match="port must be between 0 and 65535"):
        render_config(hostname="a.example", default_domain=None, listen={"imap": "h:70000"})


def test_every_field_is_documented() -> None:
    from hirondelle.config import SECTIONS

    for section, model in SECTIONS.items():
        assert model.__doc__, section
        for key, info in model.model_fields.items():
            assert info.description, f"[{section}] {key}"


def test_committed_docs_are_up_to_date() -> None:
    committed = (REPOSITORY / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == config_reference_markdown(), (
        "docs/configuration.md is out of date: run python scripts/gen_config_docs.py"
    )
