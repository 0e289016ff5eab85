"""YAML documents of the configuration: ``read_yaml`` (refusing alias bombs), ``deep_merge`` and
``unflatten``.

An alias (``*a``) repeats the node its anchor (``&a``) names: a few kilobytes of nested aliases
stand for billions of nodes, which any code that walks the document (validation, an error message)
expands. ``read_yaml`` counts the nodes of the document with every alias expanded, on the node
graph before any Python object is built, and refuses more than ``MAX_NODES``.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from fhbiometry.config.messages import ParamError

MAX_NODES = 100_000     # params.yaml has about 400 nodes; a configuration under configs/ fewer


def expanded_size(node, sizes: dict, open_nodes: set) -> int:
    """The number of nodes under ``node`` with every alias expanded (``sizes`` memoises per node,
    so this takes time linear in the file's nodes however many the expansion has)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise ValueError("an alias refers to a node that contains it (a recursive document)")
    open_nodes.add(key)
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    else:
        children = []
    sizes[key] = 1 + sum(expanded_size(child, sizes, open_nodes) for child in children)
    open_nodes.discard(key)
    return sizes[key]


def load_yaml_text(text: str, source: str, max_nodes: int = MAX_NODES):
    """The document of ``text``, refused with a ParamError naming ``source`` when it is not YAML or
    its alias expansion has more than ``max_nodes`` nodes."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        size = 0 if node is None else expanded_size(node, {}, set())
        if size <= max_nodes:
            return None if node is None else loader.construct_document(node)
    except yaml.YAMLError as err:
        raise ParamError(f"{source}: not valid YAML: {err}") from None
    except (ValueError, RecursionError) as err:
        raise ParamError(f"{source}: refused: {err}") from None
    finally:
        loader.dispose()
    raise ParamError(f"{source}: the document expands to {size:,} nodes through its aliases (*name), more "
                     f"than the {max_nodes:,} allowed: write the values out, or remove the aliases that "
                     "repeat other aliases")


def read_yaml(path, what: str = "parameter file"):
    path = Path(path)
    if not path.exists():
        raise ParamError(f"{path}: {what} not found (run from the repository root)")
    return load_yaml_text(path.read_text(), str(path))


def deep_merge(base: dict, override: dict) -> dict:
    """``base`` updated by ``override``: mappings merged key by key, anything else replaced."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def unflatten(dotted: dict) -> dict:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
    out: dict = {}
    for key, value in dotted.items():
        node = out
        *parents, leaf = str(key).split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out
