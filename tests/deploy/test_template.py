"""The sample functions' CloudFormation template: cfn-lint finds nothing, and the wiring is right
(the layer on every function, the secret read by exactly that secret's ARN, private networking,
the HTTP API routes the handlers serve). The template is read with cfn-lint's own decoder, which
turns !Ref, !Sub and !GetAtt into their long forms ({"Ref": ...})."""

import re

import pytest
from cfnlint.decode import decode

from deploysupport import CFN_LINT, SAMPLE_FUNCTION, TEMPLATE, run

REF_SECRET = {"Ref": "MongoDbUriSecretArn"}
ITEMS_ROUTES = {"POST /items", "GET /items", "GET /items/{id}", "PATCH /items/{id}", "DELETE /items/{id}"}
#: Function resource -> (runtime, handler, its code: a directory or a build of `make sample-functions`,
#: the handler's source in sample-function/, what in that source makes the handler)
FUNCTIONS = {
    "NodeFunction": ("nodejs22.x", "index.handler", "node", "node/index.js", r"exports\.handler\s*="),
    "PythonFunction": ("python3.12", "app.handler", "python", "python/app.py", r"def handler\("),
    "GoFunction": ("provided.al2023", "bootstrap", "../dist/sample-function/go", "go/main.go",
                   r"lambda\.Start\(handler\)"),
    "JavaFunction": ("java21", "items.ItemsHandler::handleRequest", "../dist/sample-function/java/items-function.jar",
                     "java/src/main/java/items/ItemsHandler.java",
                     r"class ItemsHandler implements RequestStreamHandler[\s\S]*public void handleRequest\("),
}


@pytest.fixture(scope="module")
def template() -> dict:
    decoded, problems = decode(str(TEMPLATE))
    assert not problems, problems
    return decoded


def resources(template: dict, type_name: str) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == type_name}


def test_cfn_lint_finds_nothing_in_the_template():
    result = run([CFN_LINT, TEMPLATE])

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_cfn_lint_would_flag_a_broken_copy_of_the_template(tmp_path):
    """Proves the lint test can fail: the same template with an unknown runtime is an error."""
    broken = tmp_path / "template.yaml"
    broken.write_text(TEMPLATE.read_text().replace("Runtime: python3.12", "Runtime: python2.1"))

    result = run([CFN_LINT, broken])

    assert result.returncode != 0 and "python2.1" in result.stdout, result.stdout


def test_every_function_carries_the_layer_from_the_parameter(template):
    functions = resources(template, "AWS::Lambda::Function")

    assert set(functions) == set(FUNCTIONS)
    for name, function in functions.items():
        assert function["Properties"]["Layers"] == [{"Ref": "LayerArn"}], name
    assert template["Parameters"]["LayerArn"]["Type"] == "String"


def test_functions_run_their_handlers_on_the_stated_runtime_and_architecture(template):
    for name, (runtime, handler, code, source, defines_handler) in FUNCTIONS.items():
        props = template["Resources"][name]["Properties"]
        assert (props["Runtime"], props["Handler"], props["Architectures"]) == (runtime, handler, ["x86_64"]), name
        # A local path, for `cloudformation package`: the sources, or what `make sample-functions` builds.
        assert props["Code"] == code, name
        assert re.search(defines_handler, (SAMPLE_FUNCTION / source).read_text()), f"{name}: no {handler} in {source}"
        assert 128 <= props["MemorySize"] <= 1024 and 3 <= props["Timeout"] <= 29, name


def test_the_built_code_paths_are_where_make_sample_functions_puts_them():
    makefile = (SAMPLE_FUNCTION.parent / "Makefile").read_text()
    built = re.findall(r"^SAMPLE_(?:GO|JAVA)\s*:=\s*(\S+)$", makefile, re.M)
    assert sorted(built) == ["dist/sample-function/go/bootstrap", "dist/sample-function/java/items-function.jar"]
    assert FUNCTIONS["GoFunction"][2] == "../" + built[0].rsplit("/", 1)[0]  # the directory holding bootstrap
    assert FUNCTIONS["JavaFunction"][2] == "../" + built[1]


def test_the_connection_string_comes_from_the_secret_and_never_from_a_plain_variable(template):
    for name in FUNCTIONS:
        variables = template["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert variables["MONGODB_URI_SECRET_ID"] == REF_SECRET, name
        assert "MONGODB_URI" not in variables and "MONGODB_URI_PARAMETER" not in variables, name
        assert variables["MONGODB_DATABASE"] == {"Ref": "DatabaseName"}
        assert variables["ITEMS_COLLECTION"] == {"Ref": "ItemsCollection"}


def test_the_role_may_read_exactly_that_secret_and_nothing_else_from_secrets_manager(template):
    roles = resources(template, "AWS::IAM::Role")
    assert list(roles) == ["FunctionRole"]
    role = roles["FunctionRole"]["Properties"]
    for name in FUNCTIONS:
        assert template["Resources"][name]["Properties"]["Role"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}

    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    secret_statements = [s for s in statements if any("secretsmanager" in a for a in _list(s["Action"]))]
    assert secret_statements == [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                  "Resource": REF_SECRET}]
    assert all(s["Resource"] != "*" for s in statements)
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    managed = {m["Fn::Sub"].rsplit("/", 1)[1] for m in role["ManagedPolicyArns"]}
    assert managed == {"AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole"}


def test_every_function_runs_in_the_given_private_subnets_and_security_groups(template):
    params = template["Parameters"]
    assert params["SubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert params["SecurityGroupIds"]["Type"] == "List<AWS::EC2::SecurityGroup::Id>"
    for name in FUNCTIONS:
        assert template["Resources"][name]["Properties"]["VpcConfig"] == {
            "SubnetIds": {"Ref": "SubnetIds"}, "SecurityGroupIds": {"Ref": "SecurityGroupIds"}}, name


def test_each_function_has_an_http_api_with_the_routes_its_handler_serves(template):
    integrations = resources(template, "AWS::ApiGatewayV2::Integration")
    routes = resources(template, "AWS::ApiGatewayV2::Route")
    stages = resources(template, "AWS::ApiGatewayV2::Stage")
    permissions = resources(template, "AWS::Lambda::Permission")

    for function, (_, _, _, source, _) in FUNCTIONS.items():
        [(integration_name, integration)] = [
            (n, i) for n, i in integrations.items()
            if i["Properties"]["IntegrationUri"] == {"Fn::GetAtt": [function, "Arn"]}]
        props = integration["Properties"]
        assert (props["IntegrationType"], props["PayloadFormatVersion"]) == ("AWS_PROXY", "2.0")
        api = props["ApiId"]
        assert template["Resources"][api["Ref"]]["Properties"]["ProtocolType"] == "HTTP"

        served = {r["Properties"]["RouteKey"] for r in routes.values()
                  if r["Properties"]["Target"] == {"Fn::Sub": f"integrations/${{{integration_name}}}"}}
        assert served == ITEMS_ROUTES, function
        assert all(r["Properties"]["ApiId"] == api for r in routes.values()
                   if r["Properties"]["Target"] == {"Fn::Sub": f"integrations/${{{integration_name}}}"})
        handler_routes = set(re.findall(r"""['"]((?:POST|GET|PATCH|DELETE) /items(?:/\{id\})?)['"]""",
                                        (SAMPLE_FUNCTION / source).read_text()))
        assert handler_routes == ITEMS_ROUTES, f"{source} serves {handler_routes}"

        assert [s["Properties"] for s in stages.values() if s["Properties"]["ApiId"] == api] == [
            {"ApiId": api, "StageName": "$default", "AutoDeploy": True}]
        [permission] = [p["Properties"] for p in permissions.values()
                        if p["Properties"]["FunctionName"] == {"Ref": function}]
        assert permission["Principal"] == "apigateway.amazonaws.com"
        assert f"${{{api['Ref']}}}/" in permission["SourceArn"]["Fn::Sub"]


def _list(value) -> list:
    return value if isinstance(value, list) else [value]
