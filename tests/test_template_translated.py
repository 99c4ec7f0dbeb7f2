"""template.yaml after SAM's own transform: what CloudFormation would actually create.

The SAM-level tests (test_template.py) read what we wrote; these read what SAM makes of
it, offline (aws-sam-translator in ``.venv-sam``, no AWS account), so a template SAM refuses, a route
that loses its IAM authorizer or a role that gains a wildcard fails here, not at the
provider's first ``sam deploy``.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from typing import Any

import pytest

from authsync_dev.sam_transform import TranslationError, translate
from authsync_dev.template import load_template

SAM = load_template()
FUNCTIONS = sorted(k for k, v in SAM["Resources"].items() if v["Type"] == "AWS::Serverless::Function")
MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
VPC_ACCESS = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
WECOM_CALLERS = {"AuthInfoFunction", "ChatdataFunction", "TokenRefreshFunction", "TokenBrokerFunction"}
"""The functions that call WeCom's API: with EgressMode=FixedIp they leave through the NAT's Elastic IP."""
SECRET = re.compile(r"secret:wecom-authsync/\$\{Stage\}/(suites|corps)/\*/([a-z-]+)-\?{6}$")
REF = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z]+)?\}")
PSEUDO_OR_PARAMETER = {"Stage"}
WRITES = {"secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"}

# Each function: the stack resources its role may name, and the secrets (kind → actions) it may touch.
READ = frozenset({"secretsmanager:GetSecretValue"})
KEEP = READ | WRITES
RENEWS_CORP_TOKENS = {
    "suites/config": READ,
    "suites/ticket": READ,
    "suites/suite-token": KEEP,
    "corps/permanent-code": READ,
    "corps/access-token": KEEP,
}
"""The secrets of a function that renews corp tokens but never stores or deletes a permanent code."""
EXPECTED: dict[str, tuple[set[str], dict[str, frozenset[str]]]] = {
    "CallbackIngestFunction": (
        {"AuthEventsQueue", "InboxTable", "UnmodelledCallbacksTable"},
        {"suites/config": READ, "suites/ticket": KEEP},
    ),
    "InboxDrainFunction": (
        {"AuthEventsQueue", "InboxTable", "UnmodelledCallbacksTable"},
        {"suites/config": READ, "suites/ticket": KEEP},
    ),
    "AuthInfoFunction": (
        {
            "CorpsTable",
            "LeasesTable",
            "IdempotencyTable",
            "ExchangeJournalTable",
            "CorpVaultTable",
            "CredentialsKey",
            "AuthEventsQueue",
            "ChatdataQueue",
        },
        {
            "suites/config": READ,
            "suites/ticket": READ,
            "suites/suite-token": KEEP,
            "suites/provider-token": KEEP,
            "corps/permanent-code": KEEP | {"secretsmanager:DeleteSecret"},
            "corps/access-token": KEEP | {"secretsmanager:DeleteSecret"},
        },
    ),
    "ChatdataFunction": (
        {"CorpsTable", "LeasesTable", "CorpVaultTable", "CredentialsKey", "ChatdataQueue"},
        RENEWS_CORP_TOKENS,
    ),
    "CorpQueryFunction": ({"CorpsTable"}, {}),
    "TokenRefreshFunction": (
        {"CorpsTable", "LeasesTable", "CorpVaultTable", "CredentialsKey"},
        RENEWS_CORP_TOKENS,
    ),
    "TokenBrokerFunction": (
        {"CorpsTable", "LeasesTable", "CorpVaultTable", "CredentialsKey"},
        RENEWS_CORP_TOKENS,
    ),
    "ReconcileFunction": ({"CorpsTable", "ExchangeJournalTable", "CorpVaultTable", "AuthEventsQueue"}, {}),
    "TicketMonitorFunction": (set(), {"suites/ticket": READ}),
    "ChangePublisherFunction": ({"CorpsTable", "ChangeEventBus", "ChangeEventsDLQ"}, {}),
}


FIXED_IP = {"Stage": "dev", "EgressMode": "FixedIp"}


@cache
def translated(egress_mode: str = "Default") -> dict[str, Any]:
    return translate(SAM, {"Stage": "dev", "EgressMode": egress_mode})


def resources(kind: str) -> dict[str, Any]:
    found = {k: v for k, v in translated()["Resources"].items() if v["Type"] == kind}
    assert found, f"the translated template has no {kind}"
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def conditions_for(parameters: dict[str, str]) -> dict[str, bool]:
    """The template's conditions as CloudFormation evaluates them for ``parameters`` (others: defaults).

    SAM's transform leaves conditions to CloudFormation (its output is the same for every parameter
    set), so what a deployment gets is decided here: Fn::Equals / Fn::Not / Fn::And / Fn::Or over Refs.
    """
    values = {name: str(spec.get("Default", "")) for name, spec in SAM["Parameters"].items()}
    values.update(parameters)

    def evaluate(expression: Any) -> Any:
        if isinstance(expression, dict) and len(expression) == 1:
            ((function, argument),) = expression.items()
            if function == "Ref":
                return values[argument]
            if function == "Condition":
                return evaluate(SAM["Conditions"][argument])
            if function == "Fn::Equals":
                left, right = (evaluate(a) for a in argument)
                return left == right
            if function == "Fn::Not":
                return not evaluate(argument[0])
            if function == "Fn::And":
                return all(evaluate(a) for a in argument)
            if function == "Fn::Or":
                return any(evaluate(a) for a in argument)
        if isinstance(expression, str):
            return expression
        raise AssertionError(f"cannot evaluate condition expression {expression!r}")

    return {name: bool(evaluate(expression)) for name, expression in SAM["Conditions"].items()}


DEPLOYED_WITH = conditions_for({})
"""The template's conditions with its default parameters (CorpCredentialStore=DynamoDBKMS, EgressMode=Default)."""

_NO_VALUE = {"Ref": "AWS::NoValue"}


def resolved(value: Any, conditions: dict[str, bool]) -> Any:
    """``value`` with every ``Fn::If`` chosen under ``conditions`` and ``AWS::NoValue`` removed."""
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            condition, granted, otherwise = value["Fn::If"]
            return resolved(granted if conditions[condition] else otherwise, conditions)
        out = {k: resolved(v, conditions) for k, v in value.items()}
        return {k: v for k, v in out.items() if v != _NO_VALUE}
    if isinstance(value, list):
        return [r for r in (resolved(v, conditions) for v in value) if r != _NO_VALUE]
    return value


def deployed(parameters: dict[str, str]) -> dict[str, Any]:
    """What CloudFormation makes of SAM's output for ``parameters``: the resources and outputs whose
    condition holds, every ``Fn::If`` resolved."""
    conditions = conditions_for(parameters)
    template = translated(parameters.get("EgressMode", "Default"))
    return {
        section: {
            name: resolved(entry, conditions)
            for name, entry in template[section].items()
            if "Condition" not in entry or conditions[entry["Condition"]]
        }
        for section in ("Resources", "Outputs")
    }


def statements(role: dict[str, Any], conditions: dict[str, bool] = DEPLOYED_WITH) -> list[dict[str, Any]]:
    """The role's inline statements as CloudFormation grants them under ``conditions`` (``Fn::If`` resolved)."""
    out = []
    for statement in (s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]):
        if "Fn::If" in statement:
            condition, granted, otherwise = statement["Fn::If"]
            chosen = granted if conditions[condition] else otherwise
            if chosen != {"Ref": "AWS::NoValue"}:
                out.append(chosen)
        else:
            out.append(statement)
    assert out, "a role with no inline statement"
    return out


def referenced(expression: Any) -> set[str]:
    """Stack resources named by a Resource expression (Ref, GetAtt, ${X} in Sub)."""
    if isinstance(expression, str):
        return {m for m in REF.findall(expression) if not m.startswith("AWS") and m not in PSEUDO_OR_PARAMETER}
    if isinstance(expression, list):
        return set().union(*(referenced(e) for e in expression)) if expression else set()
    if isinstance(expression, dict):
        if "Ref" in expression:
            return {expression["Ref"]} - PSEUDO_OR_PARAMETER
        if "Fn::GetAtt" in expression:
            return {as_list(expression["Fn::GetAtt"])[0]}
        if isinstance(expression.get("Fn::Sub"), list):  # [text, {local: value}]: locals are not resources
            text, local = expression["Fn::Sub"]
            return (referenced(text) - set(local)) | referenced(list(local.values()))
        return referenced(list(expression.values()))
    return set()


def secret_kind(expression: Any) -> str | None:
    text = expression.get("Fn::Sub") if isinstance(expression, dict) else None
    match = SECRET.search(text) if isinstance(text, str) else None
    return f"{match.group(1)}/{match.group(2)}" if match else None


def function_role(function: str) -> dict[str, Any]:
    role: dict[str, Any] = resources("AWS::IAM::Role")[f"{function}Role"]
    return role


# ---------------------------------------------------------------- the transform itself


def test_sam_accepts_the_template() -> None:
    assert "Transform" not in translated()
    assert {f"{f}Role" for f in FUNCTIONS} <= set(resources("AWS::IAM::Role"))


def test_removing_the_iam_authorizer_breaks_the_transform() -> None:
    """The very failure a provider's first ``sam deploy`` hit: AWS_IAM routes need EnableIamAuthorizer."""
    broken = copy.deepcopy(SAM)
    del broken["Resources"]["CallbackApi"]["Properties"]["Auth"]["EnableIamAuthorizer"]
    with pytest.raises(TranslationError, match="AWS_IAM"):
        translate(broken, {"Stage": "dev"})


# ---------------------------------------------------------------- routes


def routes() -> dict[tuple[str, str], list[dict[str, Any]]]:
    (api,) = resources("AWS::ApiGatewayV2::Api").values()
    paths = api["Properties"]["Body"]["paths"]
    out = {
        (path, method): spec.get("security", []) for path, methods in paths.items() for method, spec in methods.items()
    }
    assert out
    return out


def test_callback_routes_are_open_and_every_other_route_needs_sigv4() -> None:
    (api,) = resources("AWS::ApiGatewayV2::Api").values()
    schemes = api["Properties"]["Body"]["components"]["securitySchemes"]
    assert schemes["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    table = routes()
    assert {("/wecom/callback/{suite_id}", "get"), ("/wecom/callback/{suite_id}", "post")} <= set(table)
    assert ("/corps/{suite_id}/{corp_id}", "get") in table
    # The token broker's routes: API Gateway answers 403 to a request without a valid SigV4 signature.
    assert ("/corps/{suite_id}/{corp_id}/token", "get") in table
    assert ("/corps/{suite_id}/{corp_id}/token/invalidate", "post") in table
    for (path, method), security in table.items():
        names = {name for requirement in security for name in requirement}
        if path.startswith("/wecom/callback/"):
            assert names <= {"NONE"}, (path, method)  # WeCom cannot sign; the handler checks msg_signature
        else:
            assert names == {"AWS_IAM"}, (path, method)


def test_a_new_route_is_iam_protected_unless_it_opts_out() -> None:
    """DefaultAuthorizer: AWS_IAM, so forgetting ``Auth`` on a new route cannot make data public."""
    template = copy.deepcopy(SAM)
    events = template["Resources"]["CorpQueryFunction"]["Properties"]["Events"]
    events["ListCorps"] = {
        "Type": "HttpApi",
        "Properties": {"ApiId": {"Ref": "CallbackApi"}, "Method": "GET", "Path": "/corps"},
    }
    (api,) = (
        v for v in translate(template, {"Stage": "dev"})["Resources"].values() if v["Type"] == "AWS::ApiGatewayV2::Api"
    )
    assert api["Properties"]["Body"]["paths"]["/corps"]["get"]["security"] == [{"AWS_IAM": []}]


# ---------------------------------------------------------------- roles


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_role_names_only_its_own_resources_and_secrets(function: str) -> None:
    own_resources, own_secrets = EXPECTED[function]
    role = function_role(function)
    # SAM attaches the VPC access policy wherever VpcConfig is set, and cannot see that it is an Fn::If:
    # the WeCom callers carry it in both EgressModes (README "Fixed egress IP"), nobody else does.
    assert set(role["Properties"]["ManagedPolicyArns"]) == MANAGED | (
        {VPC_ACCESS} if function in WECOM_CALLERS else set()
    )
    named: set[str] = set()
    secrets: dict[str, set[str]] = {}
    for statement in statements(role):
        assert statement["Effect"] == "Allow"
        for resource in as_list(statement["Resource"]):
            kind = secret_kind(resource)
            if kind is not None:
                secrets.setdefault(kind, set()).update(as_list(statement["Action"]))
            else:
                named |= referenced(resource)
    assert named == own_resources
    assert {k: frozenset(v) for k, v in secrets.items()} == own_secrets


def test_no_inline_statement_grants_data_services_on_a_wildcard() -> None:
    roles = resources("AWS::IAM::Role")
    assert len(roles) >= len(FUNCTIONS)
    for name, role in roles.items():
        for statement in role["Properties"].get("Policies", []) and statements(role):
            actions = as_list(statement["Action"])
            assert all(a != "*" and not a.endswith(":*") for a in actions), name
            assert actions != ["secretsmanager:ListSecrets"], name  # not with the default store (see below)
            if any(a.split(":")[0] in {"secretsmanager", "dynamodb", "sqs", "kms"} for a in actions):
                for resource in as_list(statement["Resource"]):
                    assert resource != "*", (name, actions)


def test_with_a_secret_per_corp_reconcile_alone_may_list_secret_names_and_nothing_more() -> None:
    """CorpCredentialStore=SecretsManager: the one action IAM cannot scope (names and metadata, never a
    value), granted alone, and only then (tests/test_template.py pins the condition)."""
    with_secrets = {"CorpSecretsInSecretsManager": True}
    listed = {
        name: statement
        for name, role in resources("AWS::IAM::Role").items()
        for statement in (role["Properties"].get("Policies", []) and statements(role, with_secrets))
        if "secretsmanager:ListSecrets" in as_list(statement["Action"])
    }
    assert list(listed) == ["ReconcileFunctionRole"]
    assert as_list(listed["ReconcileFunctionRole"]["Action"]) == ["secretsmanager:ListSecrets"]
    assert listed["ReconcileFunctionRole"]["Resource"] == "*"


def test_only_auth_info_can_write_or_delete_permanent_codes() -> None:
    writers = {
        function
        for function in FUNCTIONS
        for statement in statements(function_role(function))
        if set(as_list(statement["Action"])) & (WRITES | {"secretsmanager:DeleteSecret"})
        and any(secret_kind(r) == "corps/permanent-code" for r in as_list(statement["Resource"]))
    }
    assert writers == {"AuthInfoFunction"}


def test_the_credentials_key_opens_only_the_journal_for_auth_info_and_the_vault_for_the_fetch_functions() -> None:
    """kms:Encrypt/Decrypt on the credentials key, each grant bound to one encryption-context purpose:
    the journal's (auth-info alone) or the corp credential vault's (the three fetch functions and the token broker)."""
    purposes: dict[str, set[str]] = {}
    for function in FUNCTIONS:
        for statement in statements(function_role(function)):
            if not any(a.startswith("kms:") for a in as_list(statement["Action"])):
                continue
            assert set(as_list(statement["Action"])) == {"kms:Encrypt", "kms:Decrypt"}
            assert [referenced(r) for r in as_list(statement["Resource"])] == [{"CredentialsKey"}]
            purpose = statement["Condition"]["StringEquals"]["kms:EncryptionContext:purpose"]
            assert statement["Condition"] == {"StringEquals": {"kms:EncryptionContext:purpose": purpose}}
            purposes.setdefault(function, set()).add(purpose)
    assert purposes == {
        "AuthInfoFunction": {"exchange-journal", "corp-credential"},
        "ChatdataFunction": {"corp-credential"},
        "TokenRefreshFunction": {"corp-credential"},
        "TokenBrokerFunction": {"corp-credential"},
    }


def test_the_journal_is_written_only_by_auth_info_and_reconcile_only_queries_its_pending_index() -> None:
    access: dict[str, set[str]] = {}
    for function in FUNCTIONS:
        for statement in statements(function_role(function)):
            if any("ExchangeJournalTable" in referenced(r) for r in as_list(statement["Resource"])):
                access.setdefault(function, set()).update(as_list(statement["Action"]))
                if function == "ReconcileFunction":
                    assert [json.dumps(r) for r in as_list(statement["Resource"])] == [
                        json.dumps({"Fn::Sub": "${ExchangeJournalTable.Arn}/index/PendingExchanges"})
                    ]
    assert access == {
        "AuthInfoFunction": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        "ReconcileFunction": {"dynamodb:Query"},
    }


def test_schedule_roles_only_invoke_their_function_and_reach_their_dlq() -> None:
    scheduler_roles = {
        name: role
        for name, role in resources("AWS::IAM::Role").items()
        if "scheduler.amazonaws.com" in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    }
    assert len(scheduler_roles) == 4
    for name, role in scheduler_roles.items():
        function = next(f for f in FUNCTIONS if name.startswith(f))
        granted = {(a, frozenset(referenced(s["Resource"]))) for s in statements(role) for a in as_list(s["Action"])}
        assert granted == {
            ("lambda:InvokeFunction", frozenset({function})),
            ("sqs:SendMessage", frozenset({"SchedulesDLQ"})),
        }


def test_both_broker_routes_need_sigv4_and_reach_only_the_broker() -> None:
    (api,) = resources("AWS::ApiGatewayV2::Api").values()
    paths = api["Properties"]["Body"]["paths"]
    for path, method in [
        ("/corps/{suite_id}/{corp_id}/token", "get"),
        ("/corps/{suite_id}/{corp_id}/token/invalidate", "post"),
    ]:
        route = paths[path][method]
        assert route["security"] == [{"AWS_IAM": []}], (path, method)
        assert "TokenBrokerFunction" in json.dumps(route["x-amazon-apigateway-integration"]["uri"])


# ---------------------------------------------------------------- fixed egress IP (EgressMode)


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v.get("Properties", {}) for k, v in template["Resources"].items() if v["Type"] == kind}


def ref(value: Any) -> str:
    assert isinstance(value, dict), value
    assert set(value) == {"Ref"}, value
    name: str = value["Ref"]
    return name


def test_the_wecom_callers_are_the_functions_given_wecoms_api_base() -> None:
    """The VPC is for the functions that call WeCom: those with WECOM_API_BASE in their environment."""
    given = {
        name
        for name in FUNCTIONS
        if "WECOM_API_BASE" in SAM["Resources"][name]["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert given == WECOM_CALLERS


def test_sam_leaves_the_egress_mode_to_cloudformation() -> None:
    """SAM's output is the same for both modes (conditions are CloudFormation's): the tests below
    decide what each mode deploys by evaluating the conditions, as CloudFormation will."""
    assert translated("FixedIp") == translated("Default")
    assert SAM["Parameters"]["EgressMode"]["Default"] == "Default"
    assert SAM["Parameters"]["EgressMode"]["AllowedValues"] == ["Default", "FixedIp"]
    assert SAM["Conditions"]["FixedEgress"] == {"Fn::Equals": [{"Ref": "EgressMode"}, "FixedIp"]}
    assert conditions_for({"EgressMode": "FixedIp"})["FixedEgress"] is True
    assert DEPLOYED_WITH["FixedEgress"] is False


def test_every_network_resource_exists_only_with_a_fixed_egress_ip() -> None:
    network = {k: v for k, v in translated()["Resources"].items() if v["Type"].startswith("AWS::EC2::")}
    assert len(network) == 17
    assert {v.get("Condition") for v in network.values()} == {"FixedEgress"}
    assert translated()["Outputs"]["EgressIp"]["Condition"] == "FixedEgress"


def test_by_default_no_network_is_created_and_no_function_runs_in_a_vpc() -> None:
    default = deployed({"Stage": "dev"})
    assert not [k for k, v in default["Resources"].items() if v["Type"].startswith("AWS::EC2::")]
    functions = of_type(default, "AWS::Lambda::Function")
    assert set(functions) == set(FUNCTIONS)
    assert all("VpcConfig" not in f for f in functions.values())
    assert "EgressIp" not in default["Outputs"]


def test_fixed_ip_builds_a_vpc_with_two_private_subnets_in_two_azs_behind_one_nat_with_an_elastic_ip() -> None:
    fixed = deployed(FIXED_IP)
    ((vpc_name, vpc),) = of_type(fixed, "AWS::EC2::VPC").items()
    assert (vpc["CidrBlock"], vpc["EnableDnsSupport"], vpc["EnableDnsHostnames"]) == ("10.42.0.0/16", True, True)
    subnets = of_type(fixed, "AWS::EC2::Subnet")
    assert all(ref(s["VpcId"]) == vpc_name for s in subnets.values())

    # The internet gateway, attached to the VPC, is the public route table's default route.
    ((igw, _),) = of_type(fixed, "AWS::EC2::InternetGateway").items()
    ((attachment,),) = [list(of_type(fixed, "AWS::EC2::VPCGatewayAttachment").values())]
    assert (ref(attachment["VpcId"]), ref(attachment["InternetGatewayId"])) == (vpc_name, igw)
    routes = of_type(fixed, "AWS::EC2::Route")
    associations = of_type(fixed, "AWS::EC2::SubnetRouteTableAssociation")
    default_route = {ref(r["RouteTableId"]): r for r in routes.values() if r["DestinationCidrBlock"] == "0.0.0.0/0"}
    assert len(default_route) == len(routes) == 2
    served: dict[str, set[str]] = {}
    for association in associations.values():
        served.setdefault(ref(association["RouteTableId"]), set()).add(ref(association["SubnetId"]))
    (public_table,) = [t for t, r in default_route.items() if "GatewayId" in r]
    assert ref(default_route[public_table]["GatewayId"]) == igw
    (public,) = served[public_table]

    # One NAT gateway, in the public subnet, holding the Elastic IP.
    ((nat_name, nat),) = of_type(fixed, "AWS::EC2::NatGateway").items()
    ((eip_name, eip),) = of_type(fixed, "AWS::EC2::EIP").items()
    assert eip["Domain"] == "vpc"
    assert ref(nat["SubnetId"]) == public
    assert nat["AllocationId"] == {"Fn::GetAtt": [eip_name, "AllocationId"]}

    # The private route table: its default route is the NAT; it serves two subnets in two AZs.
    (private_table,) = [t for t, r in default_route.items() if "NatGatewayId" in r]
    assert ref(default_route[private_table]["NatGatewayId"]) == nat_name
    assert set(default_route[private_table]) == {"RouteTableId", "DestinationCidrBlock", "NatGatewayId"}
    private = served[private_table]
    assert len(private) == 2
    assert public not in private
    assert set(subnets) == private | {public}
    zones = [subnets[s]["AvailabilityZone"] for s in sorted(private)]
    assert zones == [{"Fn::Select": [0, {"Fn::GetAZs": ""}]}, {"Fn::Select": [1, {"Fn::GetAZs": ""}]}]
    assert len({subnets[s]["CidrBlock"] for s in subnets}) == 3

    # DynamoDB through a gateway endpoint on the private route table, not through the NAT.
    ((endpoint,),) = [list(of_type(fixed, "AWS::EC2::VPCEndpoint").values())]
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert endpoint["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.dynamodb"}
    assert [ref(t) for t in endpoint["RouteTableIds"]] == [private_table]

    # The address to list as trusted: the Elastic IP's.
    assert fixed["Outputs"]["EgressIp"]["Value"] == {"Fn::GetAtt": [eip_name, "PublicIp"]}


def test_fixed_ip_runs_exactly_the_wecom_callers_in_the_private_subnets_and_ingest_stays_outside() -> None:
    fixed = deployed(FIXED_IP)
    private = {
        ref(a["SubnetId"])
        for a in of_type(fixed, "AWS::EC2::SubnetRouteTableAssociation").values()
        for r in of_type(fixed, "AWS::EC2::Route").values()
        if "NatGatewayId" in r and a["RouteTableId"] == r["RouteTableId"]
    }
    ((group_name, group),) = of_type(fixed, "AWS::EC2::SecurityGroup").items()
    in_vpc = {name: f["VpcConfig"] for name, f in of_type(fixed, "AWS::Lambda::Function").items() if "VpcConfig" in f}
    assert set(in_vpc) == WECOM_CALLERS
    assert "CallbackIngestFunction" in FUNCTIONS
    for config in in_vpc.values():
        assert {ref(s) for s in config["SubnetIds"]} == private
        assert [ref(g) for g in config["SecurityGroupIds"]] == [group_name]
    # The functions come into the VPC only after their routes out (the NAT's, DynamoDB's endpoint).
    routes_out = {
        name
        for name, resource in fixed["Resources"].items()
        if resource["Type"] in {"AWS::EC2::Route", "AWS::EC2::VPCEndpoint"}
        or (
            resource["Type"] == "AWS::EC2::SubnetRouteTableAssociation"
            and ref(resource["Properties"]["SubnetId"]) in private
        )
    }
    routes_out -= {n for n, r in fixed["Resources"].items() if r.get("Properties", {}).get("GatewayId")}
    assert set(fixed["Resources"][group_name]["DependsOn"]) == routes_out
    # No ingress at all; out, HTTPS only (WeCom's API and AWS's endpoints).
    assert "SecurityGroupIngress" not in group
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"], r["CidrIp"]) for r in group["SecurityGroupEgress"]] == [
        ("tcp", 443, 443, "0.0.0.0/0")
    ]
    # And the rest of the stack is what the default mode deploys.
    default = deployed({"Stage": "dev"})
    assert {k: v for k, v in fixed["Resources"].items() if k in default["Resources"]} == {
        k: ({**v, "Properties": {**v["Properties"], "VpcConfig": in_vpc[k]}} if k in in_vpc else v)
        for k, v in default["Resources"].items()
    }
