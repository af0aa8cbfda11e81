"""JSON configs validated against typed dataclass defaults.

A config is plain data: a tree of dataclasses whose fields carry the defaults and the types.
A JSON file overrides any subset of it::

    {"extends": "clean.json", "optim": {"lr": 0.001}}

`extends` names a base file (relative to the file that names it); bases are deep-merged, chains are
allowed and cycles rejected. Command-line overrides `optim.lr=0.001` come last; the value is parsed
as JSON when it can be (`3`, `true`, `[1, 2]`, `null`), else taken as a string (`kind=mfcc`).

Every key is checked: an unknown key fails with its dotted path and the closest known key, a value
of the wrong type names the key, the expected type and the value. A value of the right type that
makes no sense (`epochs=0`, `optim.lr=-1`) is refused by the section's `__post_init__` through
`check`, with the same one-line message. What `load_config` returns is the resolved config that gets
saved with a run (`to_dict`).
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import io
import json
import re
import textwrap
import tokenize
import types
import typing
from pathlib import Path

from common.cli import error_line, print_lines
from typing import Any, Callable, Literal, TypeVar, Union

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit the schema; the message is one line."""


class ConfigValueError(ValueError):
    """A value of the right type that makes no sense, raised by a section's `__post_init__`.

    `from_dict` turns it into a `ConfigError` that names the dotted key and the config's source.
    """

    def __init__(self, key: str, expected: str, value: Any) -> None:
        super().__init__(f"key '{key}' must be {expected}, got {value!r}")
        self.key, self.expected, self.value = key, expected, value


def check(condition: bool, key: str, expected: str, value: Any) -> None:
    """In a config section's `__post_init__`: refuse `value` of `key` unless `condition` holds."""
    if not condition:
        raise ConfigValueError(key, expected, value)


def check_range(key: str, values: list[float]) -> None:
    """A `[low, high]` pair a random value is drawn from."""
    check(len(values) == 2 and values[0] <= values[1], key, "[low, high] with low <= high", values)


def check_probabilities(section: Any) -> None:
    """Every `*_p` field of a config section (augmentation) is a probability."""
    for field in dataclasses.fields(section):
        if field.name.endswith("_p"):
            value = getattr(section, field.name)
            check(0.0 <= value <= 1.0, field.name, "a probability in [0, 1]", value)


def is_folder_name(name: str) -> bool:
    """A single path component: what a run name or stage must be, so a run stays inside logs/."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name


def without_comments(tree):
    """`tree` without the keys that start with '#' at any depth: JSON has no comments, so a config
    says why it chose a value in a '#' key beside it (`"#": "fbank: docs/experiments.md"`)."""
    if isinstance(tree, dict):
        return {k: without_comments(v) for k, v in tree.items() if not (isinstance(k, str) and k.startswith("#"))}
    if isinstance(tree, list):
        return [without_comments(v) for v in tree]
    return tree


def read_json_tree(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """Read a JSON config and everything it `extends`, deep-merged (the file's own keys win); keys
    starting with '#' are comments and dropped (`without_comments`)."""
    path = Path(path).resolve()
    if path in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path))
        raise ConfigError(f"{path}: 'extends' forms a cycle: {cycle}")
    if not path.is_file():
        named_by = f" (named by {_chain[-1]})" if _chain else ""
        raise ConfigError(f"{path}: config file not found{named_by}")
    try:
        tree = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level, got {type(tree).__name__}")
    tree = without_comments(tree)
    base_name = tree.pop("extends", None)
    if base_name is None:
        return tree
    if not isinstance(base_name, str):
        raise ConfigError(f"{path}: 'extends' must be a file name string, got {base_name!r}")
    base = read_json_tree(path.parent / base_name, (*_chain, path))
    return deep_merge(base, tree)


def deep_merge(base: dict, override: dict) -> dict:
    """A new dict: `override`'s keys replace `base`'s, nested dicts merge key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=VALUE` -> (["a", "b", "c"], value); VALUE is JSON when it parses, else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: expected KEY=VALUE with a dotted key, e.g. optim.lr=0.001")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.split("."), value


def apply_overrides(tree: dict, overrides: list[str]) -> dict:
    """A new tree with each `a.b.c=VALUE` override set (intermediate objects created as needed)."""
    tree = json.loads(json.dumps(tree))  # deep copy of plain JSON data
    for text in overrides:
        keys, value = parse_override(text)
        node = tree
        for depth, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                dotted = ".".join(keys[: depth + 1])
                raise ConfigError(f"override {text!r}: '{dotted}' is a value, not a section")
            node = child
        node[keys[-1]] = value
    return tree


def from_dict(schema: type[T], tree: dict, *, source: str = "config", prefix: str = "", base: T | None = None) -> T:
    """Build dataclass `schema` from `tree`, checking every key and type against its fields.

    Keys missing from `tree` keep their values in `base` when given, else the field defaults. A
    nested section starts from its field's default, so `{"features": {"kind": "mfcc"}}` keeps the
    rest of a parent's `default_factory` value instead of falling back to the section class's defaults.
    """
    if not isinstance(tree, dict):
        raise ConfigError(f"{source}: '{prefix or '<root>'}' must be an object, got {tree!r}")
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema) if f.init}
    for key in tree:
        if key not in fields:
            dotted = prefix + key
            known = [prefix + name for name in fields]
            close = difflib.get_close_matches(dotted, known, n=1, cutoff=0.6)
            hint = f" — did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
            raise ConfigError(f"{source}: unknown key '{dotted}'{hint}")
    values = {
        name: _convert(hints[name], tree[name], source, prefix + name,
                       getattr(base, name) if base is not None else _field_default(fields[name]))
        for name in fields
        if name in tree
    }
    try:
        return dataclasses.replace(base, **values) if base is not None else schema(**values)
    except ConfigValueError as e:
        raise ConfigError(f"{source}: key '{prefix}{e.key}' must be {e.expected}, got {e.value!r}") from None


def _field_default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


def _convert(annotation: Any, value: Any, source: str, dotted: str, default: Any = None) -> Any:
    """Check `value` against a type annotation; nested dataclasses are built recursively (over
    `default` when it is an instance of the annotated dataclass)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, source=source, prefix=dotted + ".",
                         base=default if isinstance(default, annotation) else None)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, source, dotted)
            except ConfigError:
                pass
        raise _type_error(source, dotted, annotation, value)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{source}: key '{dotted}' must be one of {choices}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise _type_error(source, dotted, annotation, value)
        item_type = args[0] if args else Any
        items = [_convert(item_type, v, source, f"{dotted}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(source, dotted, annotation, value)
        value_type = args[1] if args else Any
        return {k: _convert(value_type, v, source, f"{dotted}.{k}") for k, v in value.items()}
    if annotation is Any:
        return value
    if annotation is float:
        # JSON has one number type: 3 is a fine float, True is not.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _type_error(source, dotted, annotation, value)
    if annotation is int or annotation is str or annotation is bool:
        if type(value) is annotation:
            return value
        raise _type_error(source, dotted, annotation, value)
    raise ConfigError(f"{source}: key '{dotted}' has an unsupported schema type {annotation!r}")


def _type_name(annotation: Any) -> str:
    """A type as a JSON user reads it: `float`, `list[float]`, `float or null`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]"
    return getattr(annotation, "__name__", str(annotation))


def _type_error(source: str, dotted: str, annotation: Any, value: Any) -> ConfigError:
    return ConfigError(
        f"{source}: key '{dotted}' expects {_type_name(annotation)}, got {type(value).__name__} {value!r}"
    )


def load_config(schema: type[T], path: str | Path | None = None, overrides: list[str] = ()) -> T:
    """The resolved config: schema defaults <- JSON file (with its `extends` chain) <- overrides."""
    tree = read_json_tree(path) if path is not None else {}
    source = str(path) if path is not None else "config"
    if overrides:
        tree = apply_overrides(tree, list(overrides))
        source += " + overrides"
    return from_dict(schema, tree, source=source)


def to_dict(config: Any) -> dict:
    """The config as plain JSON-ready data (what a run saves as config.json)."""
    return dataclasses.asdict(config)


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved configs, as 'key: old -> new'."""
    changed = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return changed


def require_resumable(saved: dict, current: dict, run_dir: str, ignore: tuple[str, ...] = ("resume",)) -> None:
    """Refuse to resume a run folder whose saved config differs from the current one.

    Resuming with other settings would silently mix two experiments in one folder.
    """
    changed = [c for c in differences(saved, current) if c.split(":")[0] not in ignore]
    if changed:
        shown = "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
        raise ConfigError(f"{run_dir} holds a run with another config ({shown}): choose another name=..., "
                          f"set resume=false to start over, or delete the folder")


def field_meanings(schema: type) -> dict[str, str]:
    """Each field's one-line meaning, read from the dataclass source: the field's trailing comment,
    else the comment lines right above it (first sentence). Inherited fields included."""
    meanings: dict[str, str] = {}
    for cls in reversed(schema.__mro__):
        if not dataclasses.is_dataclass(cls):
            continue
        try:
            lines = textwrap.dedent(inspect.getsource(cls)).splitlines()
        except (OSError, TypeError):
            continue
        above: list[str] = []
        for line in lines[1:]:
            stripped = line.strip()
            if stripped.startswith("#"):
                above.append(stripped.lstrip("#").strip())
                continue
            field = re.match(r" {4}(\w+)\s*:", line)
            if field and not stripped.startswith("def "):
                # A trailing comment is one line already; a block above is cut to its first sentence.
                text = _trailing_comment(stripped) or re.split(r"(?<=\.)\s", " ".join(above), maxsplit=1)[0]
                if text or field.group(1) not in meanings:  # a subclass's new default keeps the meaning
                    meanings[field.group(1)] = text
            above = []
    return meanings


def _trailing_comment(line: str) -> str:
    """The `# comment` ending one line of code ('' when none); a '#' inside a string is not one."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line).readline))
    except (tokenize.TokenError, SyntaxError):
        return ""
    return next((t.string.lstrip("#").strip() for t in tokens if t.type == tokenize.COMMENT), "")


def describe_config(schema: type, config: Any = None, prefix: str = "") -> list[str]:
    """Every key of `schema` as `key  type  value  meaning` lines, grouped by section, the values
    from `config` (a resolved instance) or else the schema's defaults. Generated from the dataclasses,
    so `--help` cannot drift from what the code reads."""
    config = config if config is not None else schema()
    hints, meanings = typing.get_type_hints(schema), field_meanings(schema)
    rows, sections = [], []
    for field in dataclasses.fields(schema):
        value, annotation = getattr(config, field.name), hints[field.name]
        if dataclasses.is_dataclass(annotation):
            sections.append((field.name, annotation, value))
            continue
        kind = ("|".join(map(str, typing.get_args(annotation))) if typing.get_origin(annotation) is Literal
                else _type_name(annotation))
        rows.append(f"  {prefix + field.name:<30} {kind:<15} {json.dumps(value):<16} "
                    f"{meanings.get(field.name, '')}".rstrip())
    lines = [f"[{prefix.rstrip('.') or 'top level'}]", *rows] if rows else []
    for name, annotation, value in sections:
        lines += describe_config(annotation, value, prefix + name + ".")
    return lines


def print_help(schema: type, usage: str, config_path: str | None = None) -> None:
    """The command's usage, then every config key with its type, value and meaning; the values are
    those of `config_path` when it reads, else the defaults."""
    config, source = None, "defaults"
    if config_path is not None:
        try:
            config, source = load_config(schema, config_path), config_path
        except (ValueError, OSError) as e:
            source = f"defaults ({error_line(e)})"
    print_lines([usage.rstrip(), f"\nKeys (override any as key=value; values from {source}):",
                 *describe_config(schema, config)])


def config_from_argv(schema: type[T], argv: list[str], usage: str,
                     check: Callable[[T], None] | None = None) -> T:
    """`[--check] [CONFIG.json] [key=value ...]` from a command line; help or a bad config exits with one line.

    With `--check` (anywhere), the config is only validated (and passed to `check`, which raises
    ValueError or OSError for what else must hold, e.g. that a checkpoint it names exists), then the
    command exits 0: `run.sh` validates a stage's arguments this way before making any data.
    """
    check_only = "--check" in argv
    argv = [a for a in argv if a != "--check"]
    wants_help = any(a in ("-h", "--help") for a in argv)
    argv = [a for a in argv if a not in ("-h", "--help")]
    for arg in argv:
        if arg.startswith("-"):
            close = difflib.get_close_matches(arg, ["--help", "--check"], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SystemExit(f"error: unknown option {arg!r}{hint}; this command takes [CONFIG.json] "
                             f"[key=value ...] (--help lists every key)")
    config_path, overrides = (argv[0], argv[1:]) if argv and "=" not in argv[0] else (None, argv)
    if wants_help or not argv:
        print_help(schema, usage, config_path)
        raise SystemExit(0 if wants_help else 2)
    try:
        cfg = load_config(schema, config_path, overrides)
        if check_only and check is not None:
            check(cfg)
    except (ValueError, OSError) as e:  # ConfigError, or what `check` found (e.g. CheckpointError)
        raise SystemExit(f"error: {error_line(e)}") from None
    if check_only:
        raise SystemExit(0)
    return cfg
