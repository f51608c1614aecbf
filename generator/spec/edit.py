"""Point a program's ``state:`` at a file, editing the spec's text in place.

``dspy-forge optimize`` writes a program's compiled state and then sets that
program's ``state:`` so that the next ``generate`` serves it. The spec is the
user's file: its comments, order, quoting and line endings are theirs. So the
edit is textual and as small as it can be, found through the nodes PyYAML
composes (each knows where it starts and ends):

- a ``state:`` on one line is given the new value, and nothing else changes;
- without one, a ``state:`` line goes in after the program's ``module:`` line
  (or before its first key), at the indentation of its keys.

A program written as a flow mapping (``qa: {module: ...}``), a multi-line or
aliased value, or anything else this cannot change surely is refused with
:class:`EditRefused`, whose message the caller shows beside the line to add.
The caller checks the edited text as a spec before writing it.
"""

from __future__ import annotations

import json
import re

import yaml

# A path YAML reads as itself when written plain: no quoting needed.
_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")


class EditRefused(Exception):
    """The spec's text cannot be edited surely; the message says why."""


def yaml_scalar(value: str) -> str:
    """``value`` as a YAML scalar: plain when that reads back the same, else double-quoted.

    JSON's string syntax is YAML's double-quoted style.
    """
    if _PLAIN.fullmatch(value) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value, ensure_ascii=False)


def _entry(mapping: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key_node, value_node in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def _block_mapping(node: yaml.Node | None, where: str) -> yaml.MappingNode:
    if not isinstance(node, yaml.MappingNode):
        raise EditRefused(f"{where} is not a mapping")
    if node.flow_style:
        raise EditRefused(f"{where} is written as a flow mapping ({{...}})")
    return node


def set_program_state(text: str, program: str, value: str) -> str:
    """The spec's text with ``programs.<program>.state`` set to ``value``."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise EditRefused(f"the spec is not YAML the editor can read ({exc})") from None
    document = _block_mapping(root, "the spec")
    programs = _entry(document, "programs")
    if programs is None:
        raise EditRefused("the spec has no programs")
    found = _entry(_block_mapping(programs[1], "programs"), program)
    if found is None:
        raise EditRefused(f"no program {program!r} is written in the spec")
    mapping = _block_mapping(found[1], f"programs.{program}")
    newline = "\r\n" if "\r\n" in text else "\n"
    scalar = yaml_scalar(value)
    state = _entry(mapping, "state")
    if state is not None:
        node = state[1]
        start, end = node.start_mark, node.end_mark
        if not isinstance(node, yaml.ScalarNode) or start.line != end.line:
            raise EditRefused(f"programs.{program}.state is not a value on one line")
        if text[start.index : end.index] in ("", "~") or node.style in ("|", ">"):
            raise EditRefused(f"programs.{program}.state is not a value on one line")
        return text[: start.index] + scalar + text[end.index :]
    if not mapping.value:
        raise EditRefused(f"programs.{program} has no keys")
    first_key = mapping.value[0][0]
    column = first_key.start_mark.column
    module = _entry(mapping, "module")
    if module is not None and module[1].start_mark.line == module[1].end_mark.line:
        after = module[1].end_mark.index
        line_end = text.find("\n", after)
        at = len(text) if line_end < 0 else line_end + 1
        prefix = "" if line_end >= 0 else newline
    else:
        at = text.rfind("\n", 0, first_key.start_mark.index) + 1
        prefix = ""
        if text[at : first_key.start_mark.index].strip():
            raise EditRefused(f"programs.{program} does not start its own line")
    return text[:at] + prefix + " " * column + f"state: {scalar}" + newline + text[at:]
