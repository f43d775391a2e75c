"""Deploying the sample functions with the AWS CLI alone, against a local AWS (moto):
`aws cloudformation package` uploads each function's code (the Node.js and Python directories,
the Go and Java builds of `make sample-functions`) to S3 and `aws cloudformation deploy`
creates the stack. These are the commands `make deploy-sample` runs (see deploy_commands).

What moto 5.2.5 cannot show: its CloudFormation ignores a function's Layers and Architectures
and a role's ManagedPolicyArns, and skips the AWS::ApiGatewayV2 resources (and so the stack's
outputs, which name them). The layer check is therefore an expected failure, strict, so it fails
once moto attaches layers; test_template.py checks all of that wiring in the template itself."""

import ast
import io
import json
import shutil
import zipfile

import pytest
from cfnlint.decode import decode

from deploysupport import AWS_CLI, SAMPLE_FUNCTION, TEMPLATE, make, run

STACK = "items-sample"
BUCKET = "deploy-artifacts"
#: Function resource -> (runtime, handler, memory in MB)
FUNCTIONS = {"NodeFunction": ("nodejs22.x", "index.handler", 256), "PythonFunction": ("python3.12", "app.handler", 256),
             "GoFunction": ("provided.al2023", "bootstrap", 256),
             "JavaFunction": ("java21", "items.ItemsHandler::handleRequest", 512)}
BUILT_CODE = SAMPLE_FUNCTION.parent / "dist" / "sample-function"


def deploy_commands(packaged, *, region, bucket, stack, layer_arn, secret_arn, subnets, security_groups):
    """The commands of `make deploy-sample`, in order."""
    return [
        [AWS_CLI, "cloudformation", "package", "--region", region, "--template-file", TEMPLATE,
         "--s3-bucket", bucket, "--s3-prefix", "mongo-sidecar-sample", "--output-template-file", packaged],
        [AWS_CLI, "cloudformation", "deploy", "--region", region, "--template-file", packaged,
         "--stack-name", stack, "--capabilities", "CAPABILITY_IAM", "--no-fail-on-empty-changeset",
         "--parameter-overrides", f"LayerArn={layer_arn}", f"MongoDbUriSecretArn={secret_arn}",
         f"SubnetIds={','.join(subnets)}", f"SecurityGroupIds={','.join(security_groups)}"],
    ]


@pytest.fixture(scope="module")
def deployed(aws, aws_env, test_layer_zip, tmp_path_factory):
    """The stack deployed into moto, with what it was given."""
    aws.client("s3").create_bucket(Bucket=BUCKET)
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
    groups = [ec2.create_security_group(GroupName="items-sample", Description="sample functions",
                                        VpcId=vpc)["GroupId"]]
    secret_arn = aws.client("secretsmanager").create_secret(
        Name="prod/items/mongodb", SecretString=json.dumps({"uri": "mongodb+srv://user:pw@cluster.example.net/"}),
    )["ARN"]
    layer_arn = aws.client("lambda").publish_layer_version(
        LayerName="mongo-sidecar", Content={"ZipFile": test_layer_zip.read_bytes()},
        CompatibleArchitectures=["x86_64"])["LayerVersionArn"]
    if not (BUILT_CODE / "go" / "bootstrap").is_file() or not (BUILT_CODE / "java" / "items-function.jar").is_file():
        pytest.fail(f"the Go and Java sample functions are not built in {BUILT_CODE}: run `make sample-functions`")
    # The e2e tests import app.py, which leaves bytecode next to it; it has no place in the package.
    shutil.rmtree(SAMPLE_FUNCTION / "python" / "__pycache__", ignore_errors=True)
    packaged = tmp_path_factory.mktemp("deploy") / "packaged.yaml"

    for command in deploy_commands(packaged, region="us-east-1", bucket=BUCKET, stack=STACK, layer_arn=layer_arn,
                                   secret_arn=secret_arn, subnets=subnets, security_groups=groups):
        result = run(command, aws_env)
        assert result.returncode == 0, f"{command[1:3]} failed:\n{result.stdout}\n{result.stderr}"

    resources = aws.client("cloudformation").list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    return {
        "layer_arn": layer_arn, "secret_arn": secret_arn, "subnets": subnets, "groups": groups,
        "packaged": decode(str(packaged))[0],
        "physical": {r["LogicalResourceId"]: r.get("PhysicalResourceId") for r in resources},
    }


def function(aws, deployed, logical_id) -> dict:
    return aws.client("lambda").get_function(FunctionName=deployed["physical"][logical_id])


def test_deploy_creates_the_stack_with_every_function(aws, deployed):
    stack = aws.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]

    assert stack["StackStatus"] == "CREATE_COMPLETE"
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params["LayerArn"] == deployed["layer_arn"]
    assert params["MongoDbUriSecretArn"] == deployed["secret_arn"]
    for logical_id, (runtime, handler, memory_mb) in FUNCTIONS.items():
        config = function(aws, deployed, logical_id)["Configuration"]
        assert (config["Runtime"], config["Handler"]) == (runtime, handler), logical_id
        assert (config["MemorySize"], config["Timeout"]) == (memory_mb, 10), logical_id


def test_deployed_functions_read_the_secret_in_the_given_subnets(aws, deployed):
    for logical_id in FUNCTIONS:
        config = function(aws, deployed, logical_id)["Configuration"]
        variables = config["Environment"]["Variables"]
        assert variables["MONGODB_URI_SECRET_ID"] == deployed["secret_arn"], logical_id
        assert "MONGODB_URI" not in variables
        assert variables["MONGO_SIDECAR_ALLOW"] == "app.items"
        assert config["VpcConfig"]["SubnetIds"] == deployed["subnets"], logical_id
        assert config["VpcConfig"]["SecurityGroupIds"] == deployed["groups"], logical_id
        assert config["Role"].endswith("/" + deployed["physical"]["FunctionRole"]), logical_id


def test_the_deployed_role_may_read_exactly_the_secret(aws, deployed):
    iam = aws.client("iam")
    role = deployed["physical"]["FunctionRole"]

    [policy_name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
    if isinstance(document, str):
        # moto 5.2.5 keeps an inline policy from CloudFormation as the Python repr of the dict.
        document = ast.literal_eval(document)

    assert document["Statement"] == [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                      "Resource": deployed["secret_arn"]}]


def test_package_uploaded_the_built_jar_as_it_is(aws, deployed):
    code = deployed["packaged"]["Resources"]["JavaFunction"]["Properties"]["Code"]

    uploaded = aws.client("s3").get_object(Bucket=code["S3Bucket"], Key=code["S3Key"])["Body"].read()

    assert uploaded == (BUILT_CODE / "java" / "items-function.jar").read_bytes()
    assert "items/ItemsHandler.class" in zipfile.ZipFile(io.BytesIO(uploaded)).namelist()


def test_package_uploaded_the_go_bootstrap_executable(aws, deployed):
    code = deployed["packaged"]["Resources"]["GoFunction"]["Properties"]["Code"]
    archive = aws.client("s3").get_object(Bucket=code["S3Bucket"], Key=code["S3Key"])["Body"].read()

    mode = zipfile.ZipFile(io.BytesIO(archive)).getinfo("bootstrap").external_attr >> 16

    assert mode & 0o111, f"bootstrap is uploaded with mode {oct(mode)}: Lambda could not run it"


def test_package_uploaded_each_code_directory_and_nothing_else(aws, deployed):
    s3 = aws.client("s3")
    for logical_id, files in [("NodeFunction", ["index.js"]), ("PythonFunction", ["app.py"]),
                              ("GoFunction", ["bootstrap"])]:
        # Where `cloudformation package` put the code, as the packaged template says.
        code = deployed["packaged"]["Resources"][logical_id]["Properties"]["Code"]
        archive = s3.get_object(Bucket=code["S3Bucket"], Key=code["S3Key"])["Body"].read()

        assert sorted(zipfile.ZipFile(io.BytesIO(archive)).namelist()) == files, logical_id
        assert code["S3Key"].startswith("mongo-sidecar-sample/")
        assert function(aws, deployed, logical_id)["Configuration"]["CodeSize"] == len(archive)


@pytest.mark.xfail(strict=True, reason="moto 5.2.5's CloudFormation ignores AWS::Lambda::Function Layers")
def test_deployed_functions_have_the_layer_attached(aws, deployed):
    for logical_id in FUNCTIONS:
        layers = function(aws, deployed, logical_id)["Configuration"].get("Layers", [])
        assert [layer["Arn"] for layer in layers] == [deployed["layer_arn"]], logical_id


def test_deploying_the_same_template_again_changes_nothing_and_succeeds(aws, aws_env, deployed, tmp_path):
    packaged = tmp_path / "packaged.yaml"
    commands = deploy_commands(packaged, region="us-east-1", bucket=BUCKET, stack=STACK,
                               layer_arn=deployed["layer_arn"], secret_arn=deployed["secret_arn"],
                               subnets=deployed["subnets"], security_groups=deployed["groups"])

    results = [run(command, aws_env) for command in commands]

    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert function(aws, deployed, "NodeFunction")["Configuration"]["FunctionName"] == \
        deployed["physical"]["NodeFunction"]


def test_make_deploy_sample_deploys_the_stack_with_the_same_commands(aws, aws_env, deployed):
    if make(["-n", "deploy-sample"], aws_env).returncode != 0:
        pytest.skip("the Makefile has no deploy-sample target yet")
    stack = "items-sample-make"

    result = make(["deploy-sample", f"LAYER_ARN={deployed['layer_arn']}",
                   f"MONGODB_URI_SECRET_ARN={deployed['secret_arn']}", f"SUBNET_IDS={','.join(deployed['subnets'])}",
                   f"SECURITY_GROUP_IDS={','.join(deployed['groups'])}", f"S3_BUCKET={BUCKET}",
                   f"STACK_NAME={stack}", "AWS_REGION=us-east-1", f"AWS_CLI={AWS_CLI}"], aws_env)

    assert result.returncode == 0, result.stdout + result.stderr
    cloudformation = aws.client("cloudformation")
    assert cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                for r in cloudformation.list_stack_resources(StackName=stack)["StackResourceSummaries"]}
    for logical_id in FUNCTIONS:
        config = aws.client("lambda").get_function(FunctionName=physical[logical_id])["Configuration"]
        assert config["Environment"]["Variables"]["MONGODB_URI_SECRET_ID"] == deployed["secret_arn"]
        assert config["VpcConfig"]["SubnetIds"] == deployed["subnets"]
