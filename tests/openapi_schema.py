"""openapi_schema.py -- the JSON Schema subset tests/openapi_check.py validates
requests and answers with (standard library only): the keywords the spec
uses, and any other keyword refused rather than ignored, so the spec cannot
grow a constraint nobody checks. Integers are not numbers with a fraction
(1.0 is not an integer: the server's integers refuse it), True is not 1.
"""
import json
import re

ANNOTATIONS = {"description", "title", "default", "contentEncoding", "format", "examples",
               "summary", "deprecated"}
ELIDED = "…"  # the README's "some value here"


# ---- a JSON Schema subset ---------------------------------------------------

class Validator:
    def __init__(self, spec):
        self.spec = spec

    def resolve(self, ref):
        if not ref.startswith("#/"):
            raise ValueError("only local $ref is supported: " + ref)
        node = self.spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def errors(self, schema, v, path="$", elide=False):
        """A list of 'path: what is wrong' strings, empty when 'v' fits."""
        if schema is True or schema == {}:
            return []
        if schema is False:
            return [f"{path}: not allowed here"]
        if "$ref" in schema:
            extra = set(schema) - {"$ref"} - ANNOTATIONS
            if extra:
                raise ValueError(f"keywords beside $ref: {sorted(extra)}")
            return self.errors(self.resolve(schema["$ref"]), v, path, elide)
        errs = []
        for kw, arg in schema.items():
            if kw in ANNOTATIONS or kw.startswith("x-"):
                continue
            check = getattr(self, "kw_" + kw, None)
            if check is None:
                raise ValueError(f"unsupported schema keyword '{kw}' at {path}")
            errs += check(arg, v, path, elide, schema)
        return errs

    @staticmethod
    def type_of(v):
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "boolean"
        if isinstance(v, int):
            return "integer"  # 1.0 is not: the server's integers refuse it
        return {float: "number", str: "string", list: "array", dict: "object"}[type(v)]

    def kw_type(self, arg, v, path, elide, schema):
        want = arg if isinstance(arg, list) else [arg]
        t = self.type_of(v)
        ok = t in want or (t == "integer" and "number" in want)
        return [] if ok else [f"{path}: {t} {json.dumps(v)[:60]} is not {'/'.join(want)}"]

    def kw_enum(self, arg, v, path, elide, schema):
        if elide and v == ELIDED:
            return []
        return [] if any(same(v, a) for a in arg) else [f"{path}: {json.dumps(v)[:60]} not in {arg}"]

    def kw_const(self, arg, v, path, elide, schema):
        return self.kw_enum([arg], v, path, elide, schema)

    def kw_properties(self, arg, v, path, elide, schema):
        if not isinstance(v, dict):
            return []
        errs = []
        for k, sub in arg.items():
            if k in v:
                errs += self.errors(sub, v[k], f"{path}.{k}", elide)
        return errs

    def kw_additionalProperties(self, arg, v, path, elide, schema):
        if not isinstance(v, dict):
            return []
        known = schema.get("properties", {})
        errs = []
        for k in v:
            if k not in known:
                errs += ([f"{path}: unexpected field '{k}'"] if arg is False
                         else self.errors(arg, v[k], f"{path}.{k}", elide))
        return errs

    def kw_required(self, arg, v, path, elide, schema):
        if not isinstance(v, dict):
            return []
        return [f"{path}: missing '{k}'" for k in arg if k not in v]

    def kw_dependentRequired(self, arg, v, path, elide, schema):
        if not isinstance(v, dict):
            return []
        return [f"{path}: '{k}' needs '{d}'" for k, deps in arg.items() if k in v
                for d in deps if d not in v]

    def kw_items(self, arg, v, path, elide, schema):
        if not isinstance(v, list):
            return []
        return [e for i, x in enumerate(v) for e in self.errors(arg, x, f"{path}[{i}]", elide)]

    def kw_minItems(self, arg, v, path, elide, schema):
        return [f"{path}: fewer than {arg} items"] if isinstance(v, list) and len(v) < arg else []

    def kw_maxItems(self, arg, v, path, elide, schema):
        return [f"{path}: more than {arg} items"] if isinstance(v, list) and len(v) > arg else []

    def kw_minLength(self, arg, v, path, elide, schema):
        short = isinstance(v, str) and len(v) < arg and not (elide and v == ELIDED)
        return [f"{path}: shorter than {arg}"] if short else []

    def kw_maxLength(self, arg, v, path, elide, schema):
        return [f"{path}: longer than {arg}"] if isinstance(v, str) and len(v) > arg else []

    def kw_pattern(self, arg, v, path, elide, schema):
        if not isinstance(v, str) or (elide and v == ELIDED) or re.search(arg, v):
            return []
        return [f"{path}: {json.dumps(v)[:60]} does not match {arg}"]

    def kw_minimum(self, arg, v, path, elide, schema):
        low = self.type_of(v) in ("integer", "number") and v < arg
        return [f"{path}: {v} < {arg}"] if low else []

    def kw_maximum(self, arg, v, path, elide, schema):
        high = self.type_of(v) in ("integer", "number") and v > arg
        return [f"{path}: {v} > {arg}"] if high else []

    def kw_allOf(self, arg, v, path, elide, schema):
        return [e for sub in arg for e in self.errors(sub, v, path, elide)]

    def kw_anyOf(self, arg, v, path, elide, schema):
        results = [self.errors(sub, v, path, elide) for sub in arg]
        return [] if any(not r for r in results) else nearest("anyOf", path, results)

    def kw_oneOf(self, arg, v, path, elide, schema):
        results = [self.errors(sub, v, path, elide) for sub in arg]
        n = sum(1 for r in results if not r)
        if n == 1:
            return []
        if n > 1:
            return [f"{path}: matches {n} branches of oneOf"]
        return nearest("oneOf", path, results)

    def kw_not(self, arg, v, path, elide, schema):
        return [] if self.errors(arg, v, path, elide) else [f"{path}: matches a 'not' schema"]


def nearest(kw, path, results):
    """Why no branch fits, told by the branch that came nearest."""
    i = min(range(len(results)), key=lambda k: len(results[k]))
    return [f"{path}: fits no branch of {kw}; the nearest (#{i + 1}) says:"] + results[i]


def same(a, b):
    """JSON equality (True is not 1)."""
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b
