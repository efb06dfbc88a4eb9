"""template.yaml read as CloudFormation reads it: short-form intrinsics, Globals, Parameters, references."""

from __future__ import annotations

import copy
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"
_FUNCTION = "AWS::Serverless::Function"


class _Loader(yaml.SafeLoader):
    """SafeLoader that turns `!Ref X` / `!GetAtt A.B` / `!Sub ...` into their long forms."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref": value} if suffix == "Ref" else {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _intrinsic)


class ParameterError(ValueError):
    """Parameter overrides `sam deploy` (CloudFormation) would refuse."""


def parse_overrides(text: str | None) -> dict[str, str]:
    """`sam deploy --parameter-overrides` syntax: `K=V K2="v w"` or `ParameterKey=K,ParameterValue=V`."""
    overrides: dict[str, str] = {}
    for token in shlex.split(text or ""):
        if token.startswith("ParameterKey="):
            parts = dict(part.split("=", 1) for part in token.split(","))
            overrides[parts["ParameterKey"]] = parts.get("ParameterValue", "")
        elif "=" in token:
            key, value = token.split("=", 1)
            overrides[key] = value
        else:
            raise ParameterError(f"not a parameter override: {token!r}")
    return overrides


@dataclass
class Route:
    function: str
    method: str
    path: str
    authorizer: str | None  # None: no authorizer on this route

    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\+\\\}", r"(?P<\1>.+)", re.escape(self.path))
        regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")


@dataclass
class Authorizer:
    name: str
    function: str
    payload_type: str
    header: str
    reauthorize_every: int


@dataclass
class Function:
    logical_id: str
    code_uri: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]
    layers: list[Path]
    events: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Template:
    path: Path
    body: dict[str, Any]
    parameters: dict[str, str]

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body.get("Resources", {})

    def resources_of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == kind}

    # ---------------------------------------------------------------- intrinsics
    def resolve(self, value: Any, refs: Callable[[str, str | None], str]) -> Any:
        """Resolve intrinsics; `refs(logical_id, attribute)` gives a resource's Ref (None) or GetAtt."""
        if isinstance(value, list):
            return [self.resolve(v, refs) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg, refs)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return refs(logical_id, attribute)
            if key == "Fn::Sub":
                return self._sub(arg, refs)
            if key == "Fn::Join":
                separator, items = arg
                return separator.join(str(self.resolve(i, refs)) for i in self.resolve(items, refs))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items, refs)[int(self.resolve(index, refs))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text, refs)).split(separator)
            if key == "Fn::If":
                condition, yes, no = arg
                return self.resolve(yes if self.condition(condition, refs) else no, refs)
            if key == "Fn::Equals":
                left, right = (self.resolve(a, refs) for a in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0], refs)
        return {k: self.resolve(v, refs) for k, v in value.items()}

    def condition(self, name: str, refs: Callable[[str, str | None], str]) -> bool:
        return bool(self.resolve(self.body.get("Conditions", {})[name], refs))

    def _ref(self, name: str, refs: Callable[[str, str | None], str]) -> Any:
        pseudo = {
            "AWS::Region": self.parameters.get("AWS::Region", "us-east-1"),
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": self.parameters.get("AWS::StackName", "worldland-local"),
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return refs(name, None)

    def _sub(self, arg: Any, refs: Callable[[str, str | None], str]) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name], refs))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(refs(logical_id, attribute))
            return str(self._ref(name, refs))

        return re.sub(r"\$\{([^}!][^}]*)\}", replace, text)

    # ---------------------------------------------------------------- the application's shape
    def functions(self, refs: Callable[[str, str | None], str]) -> dict[str, Function]:
        globals_ = self.body.get("Globals", {}).get("Function", {})
        found: dict[str, Function] = {}
        for logical_id, resource in self.resources_of_type(_FUNCTION).items():
            properties = _merge_globals(globals_, resource.get("Properties", {}))
            variables = self.resolve(properties.get("Environment", {}).get("Variables", {}), refs)
            layers = [self._layer_dir(layer) for layer in properties.get("Layers", [])]
            found[logical_id] = Function(
                logical_id=logical_id,
                code_uri=(self.root / properties["CodeUri"]).resolve(),
                handler=properties["Handler"],
                timeout=int(properties.get("Timeout", 3)),
                memory=int(properties.get("MemorySize", 128)),
                environment={k: str(v) for k, v in variables.items() if v is not None},
                layers=[p for p in layers if p is not None],
                events=properties.get("Events", {}),
            )
        return found

    def _layer_dir(self, layer: Any) -> Path | None:
        if isinstance(layer, dict) and "Ref" in layer and layer["Ref"] in self.resources:
            return (self.root / self.resources[layer["Ref"]]["Properties"]["ContentUri"]).resolve()
        return None  # a published layer ARN: nothing local to mount

    def api(self) -> tuple[dict[str, Any], str | None]:
        """The (single) Serverless::Api's properties and its logical id."""
        apis = self.resources_of_type("AWS::Serverless::Api")
        if not apis:
            return {}, None
        logical_id, resource = next(iter(apis.items()))
        return resource.get("Properties", {}), logical_id

    def routes(self) -> list[Route]:
        properties, _ = self.api()
        default = properties.get("Auth", {}).get("DefaultAuthorizer")
        routes = []
        for logical_id, resource in self.resources_of_type(_FUNCTION).items():
            for event in resource.get("Properties", {}).get("Events", {}).values():
                if event.get("Type") != "Api":
                    continue
                spec = event["Properties"]
                chosen = spec.get("Auth", {}).get("Authorizer", default)
                routes.append(
                    Route(
                        logical_id, spec["Method"].upper(), spec["Path"], None if chosen in (None, "NONE") else chosen
                    )
                )
        # Literal segments win over parameters, as in API Gateway (/providers/search before /providers/{id}).
        return sorted(routes, key=lambda r: (r.path.count("{"), -len(r.path)))

    def authorizers(self) -> dict[str, Authorizer]:
        properties, _ = self.api()
        found = {}
        for name, spec in properties.get("Auth", {}).get("Authorizers", {}).items():
            arn = spec["FunctionArn"]
            function = arn["Fn::GetAtt"][0] if isinstance(arn, dict) else str(arn)
            identity = spec.get("Identity", {})
            found[name] = Authorizer(
                name=name,
                function=function,
                payload_type=spec.get("FunctionPayloadType", "TOKEN"),
                header=identity.get("Header", "Authorization"),
                reauthorize_every=int(identity.get("ReauthorizeEvery", 300)),
            )
        return found

    def gateway_responses(self) -> dict[str, tuple[int | None, str | None]]:
        properties, _ = self.api()
        responses = {}
        for kind, spec in properties.get("GatewayResponses", {}).items():
            status = spec.get("StatusCode")
            responses[kind] = (
                int(status) if status else None,
                spec.get("ResponseTemplates", {}).get("application/json"),
            )
        return responses

    def stage(self) -> str:
        properties, _ = self.api()
        stage = properties.get("StageName", "prod")
        return str(stage if isinstance(stage, str) else self.resolve(stage, lambda *_: ""))


def _merge_globals(globals_: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's rule: maps merge (function wins), lists append, scalars are replaced."""
    merged = copy.deepcopy(dict(globals_))
    for key, value in properties.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge_globals(merged[key], value)
        elif isinstance(value, list) and isinstance(merged.get(key), list) and key != "Layers":
            merged[key] = merged[key] + value
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_template(
    path: Path,
    overrides: str | Mapping[str, str] | None = None,
    stack_name: str = "worldland-local",
    region: str = "us-east-1",
) -> Template:
    body = yaml.load(path.read_text(), _Loader)
    given = parse_overrides(overrides) if isinstance(overrides, str) or overrides is None else dict(overrides)
    declared = body.get("Parameters", {})
    unknown = set(given) - set(declared)
    if unknown:
        raise ParameterError(f"unknown template parameters: {', '.join(sorted(unknown))}")
    parameters = {name: str(given.get(name, spec.get("Default", ""))) for name, spec in declared.items()}
    problems = [
        problem for name, spec in declared.items() if (problem := check_parameter(name, spec, parameters[name]))
    ]
    if problems:
        # All at once, as CloudFormation refuses the stack before creating anything.
        raise ParameterError("; ".join(problems))
    parameters |= {"AWS::StackName": stack_name, "AWS::Region": region}
    return Template(path=path, body=body, parameters=parameters)


def check_parameter(name: str, spec: Mapping[str, Any], value: str) -> str | None:
    """CloudFormation's checks of one parameter value against its declaration; the reason it is
    refused, worded as CloudFormation words it, or None when it is accepted."""
    kind = str(spec.get("Type", "String"))
    is_list = kind.startswith("List<") or kind == "CommaDelimitedList"
    items = [v.strip() for v in value.split(",")] if is_list else [value]
    numeric = kind in ("Number", "List<Number>")
    rule = spec.get("ConstraintDescription")
    for item in items:
        problem = _check_value(spec, item, numeric)
        if problem:
            return f"Parameter '{name}' " + (f"failed to satisfy constraint: {rule}" if rule else problem)
    return None


def _check_value(spec: Mapping[str, Any], value: str, numeric: bool) -> str | None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(a) for a in allowed]:
        return f"must be one of AllowedValues: {', '.join(str(a) for a in allowed)} (got {value!r})"
    if numeric:
        try:
            number = float(value)
        except ValueError:
            return f"must be a number (got {value!r})"
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return f"must be a number not less than {spec['MinValue']} (got {value})"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return f"must be a number not greater than {spec['MaxValue']} (got {value})"
        return None
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return f"must contain at least {spec['MinLength']} characters"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return f"must contain at most {spec['MaxLength']} characters"
    # CloudFormation matches the pattern against the whole value.
    if "AllowedPattern" in spec and re.fullmatch(str(spec["AllowedPattern"]), value) is None:
        return f"must match pattern {spec['AllowedPattern']}"
    return None
