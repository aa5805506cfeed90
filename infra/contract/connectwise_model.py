#!/usr/bin/env python3
"""Print ConnectWise PSA (Manage) REST model as one JSON document, read from pyconnectwise.

pyconnectwise ships pydantic models and one endpoint class per API path, both
generated from ConnectWise's OpenAPI document. This script only introspects the
installed package (classes, annotations, pydantic field info, attribute
docstrings); it holds no list of paths or fields of its own.

Output (stdout, one JSON document, keys sorted):
  source      "pyconnectwise==<installed version>"
  models      {ModelName: {jsonFieldName: FieldDescriptor}}
  paths       {"/company/configurations/{id}": PathDescriptor}
  queryParams {name: TypeDescriptor} (one set shared by every Manage path)
  jsonPatchOperation {op|path|value: TypeDescriptor} (PATCH body item)
  meta        conventions and counts

TypeDescriptor "type" is one of: str int float bool datetime date ref list dict any
  ref  -> "model": referenced model name
  list -> "model" (list of models) or "items": TypeDescriptor
  dict -> "values": TypeDescriptor
  str  -> optional "enum": [...] (Literal), "format": "uuid" | "bytes"
  any  -> optional "anyOf": [TypeDescriptor, ...]
FieldDescriptor = TypeDescriptor + "required" (no default in the model),
  "nullable" (None accepted), optional "maxLength", "requiredOnUpdates",
  "doc" (the generated docstring text, when any).
PathDescriptor:
  methods   HTTP methods the endpoint class implements, sorted
  get/post/put/patch/delete  model name of the resource for that method
            (POST/PUT/PATCH: the interface's body model; GET/DELETE: response
            model) or null when the package types it as nothing/untyped
  returns   {METHOD: TypeDescriptor} declared response type
  body      {METHOD: TypeDescriptor} declared request body; PATCH is
            {"type": "jsonPatch", "model": <resource>} (a list of operations)
  paginated true when the class offers page/pageSize paging
  endpointClass  the package's class name
  reachableFromClient  false when the package's client tree misses the class
            and its path comes from the class's generated docstrings
Every path parameter is written "{id}" (also when nested, e.g.
/service/tickets/{id}/configurations/{id}); paths are relative to
.../apis/3.0 and start with "/".
"""

from __future__ import annotations

import ast
import datetime as _dt
import importlib
import inspect
import json
import pkgutil
import re
import sys
import types
import typing
import uuid
from importlib import metadata

PACKAGE = "pyconnectwise"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")

try:
    from pydantic import BaseModel
    from pyconnectwise import interfaces as cw_interfaces
    from pyconnectwise import types as cw_types
    from pyconnectwise.clients.manage_client import ConnectWiseManageAPIClient
    import pyconnectwise.endpoints.manage as cw_endpoints
    import pyconnectwise.models.manage as cw_models
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"connectwise_model.py: cannot import {PACKAGE} ({exc}); see infra/contract/README.md\n"
    )
    sys.exit(2)

NONE_TYPE = type(None)


# --------------------------------------------------------------------------- types


def _is_model(tp: object) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def _strip_optional(tp: object) -> tuple[object, bool]:
    """Return (type without None, whether None was part of a union)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        rest = [a for a in args if a is not NONE_TYPE]
        nullable = len(rest) != len(args)
        if len(rest) == 1:
            return rest[0], nullable
        return typing.Union[tuple(rest)], nullable
    return tp, False


def describe_type(tp: object) -> dict:
    """Normalise a Python/pydantic annotation to a TypeDescriptor."""
    tp, _ = _strip_optional(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    if origin is typing.Annotated:
        return describe_type(args[0])
    if tp is typing.Any or tp is object or isinstance(tp, (typing.ForwardRef, str)):
        return {"type": "any"}
    if origin is typing.Literal:
        kinds = {type(a) for a in args}
        base = "str"
        if kinds == {bool}:
            base = "bool"
        elif kinds <= {int}:
            base = "int"
        return {"type": base, "enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        parts = [describe_type(a) for a in args]
        if all("enum" in p for p in parts) and len({p["type"] for p in parts}) == 1:
            # Literal["add"] | Literal["replace"] -> one enum
            return {"type": parts[0]["type"], "enum": [v for p in parts for v in p["enum"]]}
        if any(typing.get_origin(a) is dict for a in args) and any(
            typing.get_origin(a) is list for a in args
        ):
            return {"type": "any"}  # the package's recursive JSON alias: any JSON value
        return {"type": "any", "anyOf": parts}
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        if not args:
            return {"type": "list", "items": {"type": "any"}}
        item = args[0]
        if _is_model(item):
            return {"type": "list", "model": item.__name__}
        return {"type": "list", "items": describe_type(item)}
    if origin is dict or tp is dict:
        value = describe_type(args[1]) if len(args) == 2 else {"type": "any"}
        return {"type": "dict", "values": value}
    if _is_model(tp):
        return {"type": "ref", "model": tp.__name__}
    if typing.is_typeddict(tp):
        return {"type": "dict", "values": {"type": "any"}, "typedDict": tp.__name__}
    # Order matters: bool is an int subclass, datetime a date subclass.
    simple = [
        (bool, {"type": "bool"}),
        (int, {"type": "int"}),
        (float, {"type": "float"}),
        (str, {"type": "str"}),
        (_dt.datetime, {"type": "datetime"}),
        (_dt.date, {"type": "date"}),
        (uuid.UUID, {"type": "str", "format": "uuid"}),
        (bytes, {"type": "str", "format": "bytes"}),
    ]
    if inspect.isclass(tp):
        for cls, desc in simple:
            if issubclass(tp, cls):
                return dict(desc)
    return {"type": "any", "python": getattr(tp, "__name__", repr(tp))}


# -------------------------------------------------------------------------- models

_MAX_LEN = re.compile(r"Max length:\s*(\d+)")
_REQ_UPD = re.compile(r"Required On Updates", re.IGNORECASE)


def attribute_docstrings(module: types.ModuleType) -> dict[str, dict[str, str]]:
    """{ClassName: {python_field_name: docstring}} from the module's source."""
    tree = ast.parse(inspect.getsource(module))
    out: dict[str, dict[str, str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        docs: dict[str, str] = {}
        body = node.body
        for prev, cur in zip(body, body[1:]):
            if (
                isinstance(prev, ast.AnnAssign)
                and isinstance(prev.target, ast.Name)
                and isinstance(cur, ast.Expr)
                and isinstance(cur.value, ast.Constant)
                and isinstance(cur.value.value, str)
            ):
                docs[prev.target.id] = " ".join(cur.value.value.split())
        if docs:
            out[node.name] = docs
    return out


def model_classes() -> dict[str, type]:
    return {
        name: obj
        for name, obj in vars(cw_models).items()
        if _is_model(obj) and obj.__module__ == cw_models.__name__
    }


def describe_model(cls: type, docs: dict[str, str]) -> dict[str, dict]:
    fields: dict[str, dict] = {}
    for py_name, info in cls.model_fields.items():
        alias = info.alias or py_name
        _, nullable = _strip_optional(info.annotation)
        desc = describe_type(info.annotation)
        desc["required"] = bool(info.is_required())
        desc["nullable"] = nullable
        doc = docs.get(py_name)
        if doc:
            desc["doc"] = doc
            m = _MAX_LEN.search(doc)
            if m:
                desc["maxLength"] = int(m.group(1))
            if _REQ_UPD.search(doc):
                desc["requiredOnUpdates"] = True
        fields[alias] = desc
    return fields


# ----------------------------------------------------------------------- endpoints


def _declared(cls: type, method: str):
    fn = getattr(cls, method, None)
    if fn is None or getattr(fn, "__isabstractmethod__", False):
        return None
    return fn


def _return_annotation(fn, module_globals: dict) -> object:
    ann = fn.__annotations__.get("return", None)
    if isinstance(ann, str):
        try:
            ann = eval(ann, module_globals)  # noqa: S307 - annotation of the package's own code
        except Exception:  # pragma: no cover - unresolved forward reference
            return typing.Any
    return NONE_TYPE if ann is None else ann


def _interface_models(cls: type) -> dict[str, object]:
    """Body/resource type argument of IGettable/IPostable/IPuttable/IPatchable/IDeleteable."""
    names = {
        "IGettable": "get",
        "IPostable": "post",
        "IPuttable": "put",
        "IPatchable": "patch",
        "IDeleteable": "delete",
    }
    out: dict[str, object] = {}
    for klass in inspect.getmro(cls):
        for base in getattr(klass, "__orig_bases__", ()):
            origin = typing.get_origin(base)
            if origin is None or getattr(origin, "__module__", "") != cw_interfaces.__name__:
                continue
            method = names.get(origin.__name__)
            args = typing.get_args(base)
            if method and args and method not in out:
                out[method] = args[0]
    return out


def _resource_name(desc: dict | None) -> str | None:
    if not desc:
        return None
    if desc.get("model"):
        return desc["model"]
    return None


def describe_endpoint(endpoint) -> dict:
    cls = type(endpoint)
    module_globals = vars(sys.modules[cls.__module__])
    iface = _interface_models(cls)
    methods, returns, body, resource = [], {}, {}, {}
    for m in HTTP_METHODS:
        fn = _declared(cls, m)
        if fn is None:
            continue
        upper = m.upper()
        methods.append(upper)
        ret = _return_annotation(fn, module_globals)
        ret_desc = None if ret is NONE_TYPE else describe_type(ret)
        returns[upper] = ret_desc
        iface_desc = None
        if m in iface and iface[m] is not None and iface[m] is not NONE_TYPE:
            iface_desc = describe_type(iface[m])
        if m in ("post", "put"):
            body[upper] = iface_desc or ret_desc
            resource[m] = _resource_name(body[upper])
        elif m == "patch":
            target = _resource_name(iface_desc or ret_desc)
            body[upper] = {"type": "jsonPatch", "model": target}
            resource[m] = target
        else:
            resource[m] = _resource_name(ret_desc or iface_desc)
    out = {
        "methods": sorted(methods),
        "returns": returns,
        "body": body,
        "paginated": _declared(cls, "paginated") is not None,
        "endpointClass": cls.__name__,
        "reachableFromClient": True,
    }
    out.update(resource)
    return out


_DOC_PATH = re.compile(r"against the (/\S+) endpoint")


def documented_path(cls: type) -> str | None:
    """Path named in the generated method docstrings of an endpoint class."""
    for name in (*HTTP_METHODS, "paginated"):
        fn = vars(cls).get(name)
        m = _DOC_PATH.search(getattr(fn, "__doc__", None) or "")
        if m:
            return m.group(1)
    return None


def walk_endpoints() -> tuple[dict[str, dict], set[str]]:
    """Walk the client's endpoint tree; return ({path: PathDescriptor}, class names seen)."""
    # No __init__: the constructor may call the API to learn the codebase.
    client = ConnectWiseManageAPIClient.__new__(ConnectWiseManageAPIClient)
    roots = [
        prop.fget(client)
        for _, prop in sorted(vars(ConnectWiseManageAPIClient).items())
        if isinstance(prop, property)
    ]
    paths: dict[str, dict] = {}
    seen: set[str] = set()
    stack = [("", r) for r in roots]
    while stack:
        parent_path, ep = stack.pop()
        path = f"{parent_path}/{ep.endpoint_base.strip('/')}"
        seen.add(type(ep).__name__)
        desc = describe_endpoint(ep)
        if path in paths and paths[path]["endpointClass"] != desc["endpointClass"]:
            desc.setdefault("alsoClasses", []).append(paths[path]["endpointClass"])
        paths[path] = desc
        for child in getattr(ep, "_child_endpoints", []):
            stack.append((path, child))
        id_fn = _declared(type(ep), "id")
        if callable(id_fn):
            stack.append((path, ep.id("{id}")))
    return paths, seen


# ---------------------------------------------------------------------------- main


def typed_dict_fields(td: type) -> dict[str, dict]:
    hints = typing.get_type_hints(td, include_extras=False)
    return {name: describe_type(tp) for name, tp in hints.items()}


def build() -> dict:
    version = metadata.version(PACKAGE)
    docs = attribute_docstrings(cw_models)
    models = {name: describe_model(cls, docs.get(name, {})) for name, cls in model_classes().items()}
    paths, seen = walk_endpoints()
    all_classes = {
        info.name
        for info in pkgutil.iter_modules(cw_endpoints.__path__)
        if info.name.endswith("Endpoint")
    }
    # The package's client tree misses some endpoint classes (e.g. case-only
    # clashes such as /system/mycompany vs /system/myCompany). Those classes
    # still exist; their path is the one their generated docstrings name.
    # For reached classes the walked path always equals that docstring path.
    doc_mismatch, unplaced, broken = [], [], {}
    for name in sorted(all_classes - seen):
        try:
            cls = getattr(importlib.import_module(f"{cw_endpoints.__name__}.{name}"), name)
        except ImportError as exc:  # module refers to a model the package lacks
            broken[name] = str(exc).split(" from ")[0]
            continue
        doc_path = documented_path(cls)
        desc = describe_endpoint(cls(None, parent_endpoint=None))
        if doc_path is None:
            if desc["methods"]:  # callable, yet nowhere to put it
                unplaced.append(name)
            continue  # otherwise a mere container of child endpoints
        desc["reachableFromClient"] = False
        if doc_path in paths:
            paths[doc_path].setdefault("alsoClasses", []).append(name)
        else:
            paths[doc_path] = desc
    for path, desc in paths.items():
        cls_name = desc["endpointClass"]
        cls = getattr(sys.modules[f"{cw_endpoints.__name__}.{cls_name}"], cls_name)
        doc_path = documented_path(cls)
        if doc_path is not None and doc_path != path:
            doc_mismatch.append([path, doc_path])
    containers = sorted(p for p, d in paths.items() if not d["methods"])
    for p in containers:
        del paths[p]
    referenced = set()
    for p in paths.values():
        for key in ("returns", "body"):
            for d in p[key].values():
                if d and d.get("model"):
                    referenced.add(d["model"])
    return {
        "source": f"{PACKAGE}=={version}",
        "models": models,
        "paths": paths,
        "queryParams": typed_dict_fields(cw_types.ConnectWiseManageRequestParams),
        "jsonPatchOperation": typed_dict_fields(cw_types.Patch),
        "meta": {
            "pathParameter": "{id}",
            "pathBase": "/v4_6_release/apis/3.0 (codebase-dependent prefix, not part of the keys)",
            "modelCount": len(models),
            "pathCount": len(paths),
            "endpointClassesNotReachableFromClient": sorted(all_classes - seen),
            "endpointClassesWithoutPath": unplaced,
            "endpointClassesNotImportable": broken,
            "walkedPathDiffersFromDocstring": doc_mismatch,
            "containerPathsWithoutMethodsDropped": len(containers),
            "modelsReferencedByPathsButMissing": sorted(referenced - set(models)),
        },
    }


def main(argv: list[str]) -> int:
    indent = None if "--compact" in argv else 1
    json.dump(build(), sys.stdout, indent=indent, sort_keys=True, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
