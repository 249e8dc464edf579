"""The packaged YAML files ship with their parsed form (jobmedic/configs/<name>.json,
jobmedic.core.parsedform), which a command's start reads instead of importing and running a
YAML parser (issue 16 item 6). It must be current - written from the YAML text as committed -
and hold exactly the data the YAML parses to; a stale one is ignored (the YAML is parsed)."""
from __future__ import annotations

import json

import pytest
import yaml

from jobmedic.core import parsedform
from jobmedic.settings import config_resource, config_text, parsed_config

REGENERATE = "python -m jobmedic.core.parsedform jobmedic/configs"


@pytest.mark.parametrize("name", parsedform.FILES)
def test_parsed_form_is_current_and_exact(name):
    text = config_text(name)
    stored = json.loads(config_resource(name + ".json").read_text(encoding="utf-8"))
    assert stored["sha256"] == parsedform.digest(text), f"{name} changed: run {REGENERATE}"
    expected = yaml.load(text, Loader=yaml.SafeLoader)  # the pure loader: the reference
    assert parsedform.same_data(parsed_config(name), expected)


def test_taxonomy_keeps_its_integer_keys():
    data = parsed_config("taxonomy.yaml")
    assert data["exit_codes"] and all(isinstance(k, int) for k in data["exit_codes"])
    assert data["signals"] and all(isinstance(k, int) for k in data["signals"])


def test_a_stale_parsed_form_is_not_used():
    """Text other than the one the parsed form was written from is parsed as YAML."""
    text = config_text("jobmedic.yaml") + "\nextra_key_for_the_test: 1\n"
    assert parsed_config("jobmedic.yaml", text)["extra_key_for_the_test"] == 1
    stored = config_resource("jobmedic.yaml.json").read_text(encoding="utf-8")
    with pytest.raises(yaml.YAMLError):
        parsedform.load(stored, "a: [unclosed")
    assert parsedform.load("not json", "a: 1") == {"a": 1}
    assert parsedform.load(None, "a: 1") == {"a": 1}


def test_same_data_tells_types_apart():
    assert parsedform.same_data({"a": [1, 2.0, True]}, {"a": [1, 2.0, True]})
    assert not parsedform.same_data({"a": 1}, {"a": 1.0})
    assert not parsedform.same_data({"a": 1}, {"a": True})
    assert not parsedform.same_data({1: "x"}, {"1": "x"})
    assert not parsedform.same_data({"a": 1, "b": 2}, {"b": 2, "a": 1})


def test_data_json_cannot_carry_is_refused():
    with pytest.raises(ValueError, match="JSON cannot carry"):
        parsedform.dumps("when: 2024-05-01\n")  # a YAML date


def test_writer_reproduces_the_committed_files(tmp_path):
    for name in parsedform.FILES:
        (tmp_path / name).write_text(config_text(name), encoding="utf-8")
    for out in parsedform.write(tmp_path):
        assert out.read_text(encoding="utf-8") == \
            config_resource(out.name).read_text(encoding="utf-8"), out.name
