"""The SAM template as an operator relies on it: every failed, timed-out or half-failed
run reaches the alarm topic with the threshold, period and missing-data treatment its
purpose needs, every log group keeps its logs for the set retention, the dashboard draws
the metrics the run-report function publishes, and each role may do what its code calls
and nothing else (docs/operating.md, "What each role may do"). Parsed with cfn-lint's CloudFormation
decoder (it knows !Ref, !GetAtt and !Sub)."""

import fnmatch
import json
import math
import pathlib
import re
import unittest
from collections import namedtuple

from cfnlint.decode import decode_str

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load():
    template, errors = decode_str((ROOT / "template.yaml").read_text())
    assert not errors, errors
    return template


def ref(value):
    """The resource a `!Ref` or `!GetAtt` names."""
    if "Ref" in value:
        return value["Ref"]
    return value["Fn::GetAtt"][0]


def listed(value):
    """A policy field that may be one value or a list of them, as a list."""
    return list(value) if isinstance(value, list) else [value]


# ---------------------------------------------------------------------------------------
# Alarms

# What each alarm is for, and the settings that make it say so. All four count events (a
# failed, a timed-out, a half-failed run, a run whose retirements the guard held): the Sum
# over the period, firing on the first event (> 0 of a count is >= 1, `fires_at`), and a
# period without data means nothing happened there, so missing data is not breaching (a
# quiet schedule never alarms, docs/operating.md "Knowing how runs go"). The AWS/States metrics come
# per execution, so five minutes tells of a failed run at once; the run-report metrics come
# once per run (every 6 hours by default), so an hour is plenty. DatapointsToAlarm unset:
# the one period is the one datapoint.
ALARMS = {
    "RunFailedAlarm": dict(
        Namespace="AWS/States", MetricName="ExecutionsFailed", Statistic="Sum",
        Period=300, EvaluationPeriods=1, DatapointsToAlarm=None,
        Threshold=0, ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching", fires_at=1,
    ),
    "RunTimedOutAlarm": dict(
        Namespace="AWS/States", MetricName="ExecutionsTimedOut", Statistic="Sum",
        Period=300, EvaluationPeriods=1, DatapointsToAlarm=None,
        Threshold=0, ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching", fires_at=1,
    ),
    "RunWithFailuresAlarm": dict(
        Namespace="LansweeperConnectWiseSync", MetricName="RunsWithFailures", Statistic="Sum",
        Period=3600, EvaluationPeriods=1, DatapointsToAlarm=None,
        Threshold=0, ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching", fires_at=1,
    ),
    # An absence: no run completed (succeeded, with or without failures) for four
    # six-hour periods; a day without the metric is exactly that.
    "NoCompletedRunAlarm": dict(
        Namespace="LansweeperConnectWiseSync", MetricName="RunsCompleted", Statistic="Sum",
        Period=21600, EvaluationPeriods=4, DatapointsToAlarm=None,
        Threshold=1, ComparisonOperator="LessThanThreshold",
        TreatMissingData="breaching", fires_at=0,
    ),
    "RetirementGuardAlarm": dict(
        Namespace="LansweeperConnectWiseSync", MetricName="RetirementGuardHeld", Statistic="Sum",
        Period=3600, EvaluationPeriods=1, DatapointsToAlarm=None,
        Threshold=0, ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching", fires_at=1,
    ),
}

# An alarm on something happening breaches above its threshold, and a period with no data
# is a period where it did not happen; an alarm on something not happening ("no
# successful run for N periods") breaches below it, and a period with no data is exactly
# that, so missing data must breach.
MISSING_DATA_BY_OPERATOR = {
    "GreaterThanThreshold": "notBreaching",
    "GreaterThanOrEqualToThreshold": "notBreaching",
    "LessThanThreshold": "breaching",
    "LessThanOrEqualToThreshold": "breaching",
}


def first_breaching_count(threshold, operator):
    """The whole count that puts a count alarm into ALARM: the smallest for an alarm on
    events happening, the largest for one on their absence."""
    if operator == "GreaterThanThreshold":
        return math.floor(threshold) + 1
    if operator == "GreaterThanOrEqualToThreshold":
        return math.ceil(threshold)
    if operator == "LessThanThreshold":
        return math.ceil(threshold) - 1
    raise AssertionError(f"{operator} is not an alarm on events happening")


# ---------------------------------------------------------------------------------------
# IAM

# One action on one resource: `resource` is a logical id of the template (the table, the
# secret, a function), "*" for any resource, or "literal:<text>" for an ARN written out;
# `suffix` is what follows the resource's ARN ("/index/*", ":*").
Grant = namedtuple("Grant", "action resource suffix")

# SAM's policy templates, from AWS SAM's policy_templates.json
# (samtranslator/policy_templates_data/policy_templates.json), for the ones a role here
# might use: per statement, its actions and its resources as (parameter, what follows the
# parameter's ARN); parameter None for "*". test_the_encoded_policy_templates_are_sam_s
# checks these against the copy that comes with cfn-lint.
_TABLE = [("TableName", ""), ("TableName", "/index/*")]
POLICY_TEMPLATES = {
    "DynamoDBCrudPolicy": [(
        ["dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Scan",
         "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem",
         "dynamodb:BatchGetItem", "dynamodb:DescribeTable", "dynamodb:ConditionCheckItem"],
        _TABLE,
    )],
    "DynamoDBReadPolicy": [(
        ["dynamodb:GetItem", "dynamodb:Scan", "dynamodb:Query", "dynamodb:BatchGetItem",
         "dynamodb:DescribeTable"],
        _TABLE,
    )],
    "DynamoDBWritePolicy": [(
        ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"],
        _TABLE,
    )],
    "AWSSecretsManagerGetSecretValuePolicy": [(
        ["secretsmanager:GetSecretValue"], [("SecretArn", "")],
    )],
    "LambdaInvokePolicy": [(
        ["lambda:InvokeFunction"], [("FunctionName", "*")],
    )],
    "CloudWatchPutMetricPolicy": [(
        ["cloudwatch:PutMetricData"], [(None, "*")],
    )],
    "StepFunctionsExecutionPolicy": [(
        ["states:StartExecution"], [("StateMachineName", "")],
    )],
}

# What SAM gives every function without a Role of its own, besides its Policies
# (the AWSLambdaBasicExecutionRole managed policy): writing its logs.
BASIC_EXECUTION = {
    Grant("logs:CreateLogGroup", "*", ""),
    Grant("logs:CreateLogStream", "*", ""),
    Grant("logs:PutLogEvents", "*", ""),
}
MANAGED_POLICIES = {"AWSLambdaBasicExecutionRole": BASIC_EXECUTION}

# Every DynamoDB action that takes items or the table away (BatchWriteItem carries
# DeleteRequests, PartiQLDelete is ExecuteStatement's DELETE).
DELETING = ["dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:PartiQLDelete",
            "dynamodb:DeleteTable", "dynamodb:DeleteTableReplica"]

TABLE, SECRET, MACHINE = "SyncTable", "Credentials", "SyncStateMachine"
STORE = {Grant("dynamodb:GetItem", TABLE, ""), Grant("dynamodb:PutItem", TABLE, "")}
READS_SECRET = {Grant("secretsmanager:GetSecretValue", SECRET, "")}
FUNCTIONS = ["FetchAssetsFunction", "EnsureReferencesFunction", "MatchFunction",
             "BulkCreateFunction", "BulkModifyFunction", "TicketAgreementEnrichFunction",
             "RunReportFunction"]

# docs/operating.md, "What each role may do (nothing else, on nothing else)", with what its
# table leaves out: SAM's logs grant to every function, and the log-delivery and X-Ray
# actions Step Functions needs, which take no resource.
EXPECTED_GRANTS = {
    **{name: STORE | READS_SECRET | BASIC_EXECUTION for name in FUNCTIONS},
    # The store only: shared::lambda::start_store, no secret, no API.
    "RunReportFunction": STORE | BASIC_EXECUTION,
    MACHINE: {Grant("lambda:InvokeFunction", name, "") for name in FUNCTIONS}
    | {Grant("dynamodb:DeleteItem", TABLE, "")}
    | {Grant(action, "*", "") for action in [
        "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
        "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
        "xray:GetSamplingTargets"]},
}


def target(value, resources):
    """(resource, suffix) of a policy's Resource or a policy template's parameter."""
    if isinstance(value, str):
        return ("*", "") if value == "*" else ("literal:" + value, "")
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return (argument, "")
        if function == "Fn::GetAtt":
            name, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return (name if attribute == "Arn" else f"{name}.{attribute}", "")
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            named = []
            for match in re.finditer(r"\$\{([^}!]+)\}", text):
                name = match.group(1)
                if name in variables:
                    inner, _ = target(variables[name], resources)
                    named.append((inner, match.end()))
                elif name.split(".")[0] in resources:
                    named.append((name.split(".")[0], match.end()))
            if len(named) == 1:
                name, end = named[0]
                return (name, text[end:])
            return ("literal:" + text, "")
    raise AssertionError(f"a policy resource this test cannot read: {value!r}")


def grants(template, name):
    """Everything the role of `name` (a function or the state machine) may do: its
    Policies, SAM policy templates expanded, and what SAM adds on its own."""
    resources = template["Resources"]
    resource = resources[name]
    properties = resource["Properties"]
    assert "Role" not in properties, f"{name} brings its own Role, which this test does not read"
    granted = set()
    if resource["Type"] == "AWS::Serverless::Function":
        granted |= BASIC_EXECUTION
    for policy in listed(properties.get("Policies", [])):
        if isinstance(policy, str):
            assert policy in MANAGED_POLICIES, f"{name}: managed policy {policy} is not known here"
            granted |= MANAGED_POLICIES[policy]
        elif "Statement" in policy:
            for statement in listed(policy["Statement"]):
                assert statement.get("Effect") == "Allow", f"{name}: only Allow statements are read"
                assert "NotAction" not in statement and "NotResource" not in statement, name
                for action in listed(statement["Action"]):
                    for value in listed(statement["Resource"]):
                        granted.add(Grant(action, *target(value, resources)))
        else:
            ((template_name, parameters),) = policy.items()
            assert template_name in POLICY_TEMPLATES, (
                f"{name}: SAM policy template {template_name} is not encoded in POLICY_TEMPLATES"
            )
            for actions, specs in POLICY_TEMPLATES[template_name]:
                for parameter, suffix in specs:
                    if parameter is None:
                        where = ("*", "")
                    else:
                        resource_name, _ = target(parameters[parameter], resources)
                        where = (resource_name, suffix)
                    for action in actions:
                        granted.add(Grant(action, *where))
    return granted


def allowing(granted, action):
    """The grants that let `action` through (IAM's wildcards, case-insensitive)."""
    return {g for g in granted if fnmatch.fnmatchcase(action.lower(), g.action.lower())}


# ---------------------------------------------------------------------------------------
# The state machine's definition

def definition():
    return json.loads((ROOT / "infra" / "statemachine" / "sync.asl.json").read_text())


def tasks(states):
    """Every Task state of a definition, inside Map and Parallel states too."""
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        for inner in [state.get("ItemProcessor"), state.get("Iterator")] + state.get("Branches", []):
            if inner:
                yield from tasks(inner["States"])


def substituted(value, substitutions, resources):
    """The resource a "${Name}" of the definition stands for."""
    match = re.fullmatch(r"\$\{(\w+)\}", value)
    assert match, f"{value} is not one DefinitionSubstitutions placeholder"
    resource, suffix = target(substitutions[match.group(1)], resources)
    assert not suffix, value
    return resource


class TemplateTest(unittest.TestCase):
    def setUp(self):
        self.template = load()
        self.resources = self.template["Resources"]

    def of_type(self, kind):
        return {n: r for n, r in self.resources.items() if r["Type"] == kind}

    def test_every_alarm_notifies_the_topic(self):
        """An alarm on another metric, dimension or topic (or none) leaves a failed run unheard."""
        alarms = self.of_type("AWS::CloudWatch::Alarm")
        watched = {a["Properties"]["MetricName"] for a in alarms.values()}
        self.assertEqual(watched, {"ExecutionsFailed", "ExecutionsTimedOut", "RunsWithFailures", "RetirementGuardHeld", "RunsCompleted"})
        topics = self.of_type("AWS::SNS::Topic")
        self.assertEqual(len(topics), 1)
        topic = next(iter(topics))
        for name, alarm in alarms.items():
            actions = [ref(a) for a in alarm["Properties"]["AlarmActions"]]
            self.assertEqual(actions, [topic], name)
            dimensions = alarm["Properties"]["Dimensions"]
            if alarm["Properties"]["Namespace"] == "AWS/States":
                self.assertEqual(ref(dimensions[0]["Value"]), "SyncStateMachine", name)
            else:
                # The namespace and dimension the run-report function's metric line uses.
                self.assertEqual(alarm["Properties"]["Namespace"], "LansweeperConnectWiseSync")
                self.assertEqual(dimensions, [{"Name": "Service", "Value": "lscw"}])
        subscription = self.of_type("AWS::SNS::Subscription")
        (sub,) = subscription.values()
        self.assertEqual(sub["Condition"], "HasAlarmEmail")
        self.assertEqual(ref(sub["Properties"]["TopicArn"]), topic)

    def test_every_alarm_fires_on_what_it_is_for(self):
        """A threshold, operator, period or missing-data setting other than ALARMS' means an
        alarm that stays quiet on its first event, or one that rings when nothing happened."""
        alarms = self.of_type("AWS::CloudWatch::Alarm")
        self.assertEqual(set(alarms), set(ALARMS), "every alarm has its row in ALARMS")
        for name, expected in ALARMS.items():
            properties = alarms[name]["Properties"]
            with self.subTest(alarm=name):
                for key, value in expected.items():
                    if key == "fires_at":
                        continue
                    self.assertEqual(properties.get(key), value, f"{name}.{key}")
                self.assertEqual(
                    first_breaching_count(properties["Threshold"], properties["ComparisonOperator"]),
                    expected["fires_at"],
                    f"{name} fires at a count of {expected['fires_at']}",
                )

    def test_missing_data_follows_what_the_alarm_watches(self):
        """An alarm on events that treats a silent period as breaching rings on every quiet
        schedule; one on an absence that treats it as not breaching never rings at all."""
        for name, alarm in self.of_type("AWS::CloudWatch::Alarm").items():
            properties = alarm["Properties"]
            with self.subTest(alarm=name):
                self.assertEqual(
                    properties.get("TreatMissingData"),
                    MISSING_DATA_BY_OPERATOR[properties["ComparisonOperator"]],
                    name,
                )
                self.assertGreaterEqual(properties["EvaluationPeriods"],
                                        properties.get("DatapointsToAlarm", 1), name)
                self.assertEqual(properties["Period"] % 60, 0, name)

    def test_the_sync_lease_is_given_up_before_the_enrichment_and_both_at_the_end(self):
        """A first enrichment writes for many hours: held under the sync's lease, it would
        skip every hourly sync meanwhile; a path that ends without releasing a lease
        skips runs until it lapses."""
        states = definition()["States"]

        def path(start, stop):
            seen, name = [], start
            while name not in stop:
                seen.append(name)
                state = states[name]
                name = state.get("Next") or state.get("Default")
            return seen + [name]

        for start in ("AnythingToModify", "ModifyConfigurations"):
            step = states[start].get("Next") or states[start].get("Default")
            self.assertEqual(path(step, {"Enrich"})[:2], ["ReleaseLease", "PrepareEnrichment"], start)
        self.assertEqual(path("RecordReport", {"Done"}), ["RecordReport", "ReleaseEnrichmentLease", "Done"])
        self.assertEqual(
            path("RecordFailure", {"Failed"}),
            ["RecordFailure", "ReleaseLeaseAfterFailure", "ReleaseEnrichmentLeaseAfterFailure", "Failed"],
        )
        for name in ("ReleaseLease", "ReleaseEnrichmentLease", "ReleaseLeaseAfterFailure",
                     "ReleaseEnrichmentLeaseAfterFailure"):
            self.assertEqual(states[name]["Catch"][0]["Next"], states[name]["Next"],
                             f"{name}: a failed release goes on all the same")

    def test_many_clients_deploy_without_the_single_site_parameters(self):
        """The many-clients path is the documented one: a stack deployed with neither
        TargetCompany nor LansweeperSiteId, its mapping set in the table afterwards."""
        parameters = load()["Parameters"]
        for name in ("TargetCompany", "LansweeperSiteId", "ConfigurationPodId"):
            self.assertEqual(parameters[name].get("Default"), "", name)
        self.assertEqual(parameters["CreateCustomFields"].get("Default"), "false")

    def test_a_run_can_time_out_so_the_timed_out_alarm_can_fire(self):
        """Without the definition's TimeoutSeconds a stuck run never times out, and
        RunTimedOutAlarm watches a metric that is never published."""
        timed_out = [
            name for name, alarm in self.of_type("AWS::CloudWatch::Alarm").items()
            if alarm["Properties"]["MetricName"] == "ExecutionsTimedOut"
        ]
        self.assertTrue(timed_out)
        timeout = definition().get("TimeoutSeconds")
        self.assertIsInstance(timeout, int, "sync.asl.json has no TimeoutSeconds")
        # Longer than the longest run the product makes on purpose: a first enrichment of
        # 100,000 assets at Lansweeper's 2,000 requests an hour (about 50 hours).
        self.assertGreater(timeout, 50 * 3600)

    def test_every_function_and_the_state_machine_log_with_retention(self):
        """A log group missing or without the retention parameter keeps a function's logs
        forever, or loses the state machine's."""
        functions = self.of_type("AWS::Serverless::Function")
        groups = self.of_type("AWS::Logs::LogGroup")
        for group in groups.values():
            self.assertEqual(group["Properties"]["RetentionInDays"], {"Ref": "LogRetentionDays"})
        named = {
            group["Properties"]["LogGroupName"]["Fn::Sub"]: name for name, group in groups.items()
        }
        for function in functions:
            self.assertIn("/aws/lambda/${%s}" % function, named, function)
        machine = self.resources["SyncStateMachine"]["Properties"]
        destination = machine["Logging"]["Destinations"][0]["CloudWatchLogsLogGroup"]
        self.assertIn(ref(destination["LogGroupArn"]), groups)
        self.assertEqual(machine["Logging"]["Level"], {"Ref": "StateMachineLogLevel"})
        self.assertEqual(self.template["Parameters"]["StateMachineLogLevel"]["Default"], "ERROR")
        self.assertEqual(self.template["Parameters"]["LogRetentionDays"]["Default"], 30)

    def test_the_dashboard_draws_the_published_metrics(self):
        """A metric the run-report function publishes but the dashboard does not draw is
        one an operator never sees."""
        (dashboard,) = self.of_type("AWS::CloudWatch::Dashboard").values()
        body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
        widgets = json.loads(body.replace("${AWS::Region}", "x").replace("${SyncStateMachine}", "y"))
        drawn = {
            metric[1]
            for widget in widgets["widgets"]
            for metric in widget["properties"]["metrics"]
        }
        for metric in ["Created", "Modified", "Unchanged", "Conflicts", "Failed",
                       "ConnectWiseRequests", "LansweeperRequests", "RunsWithFailures",
                       "DurationSeconds", "ExecutionsFailed"]:
            self.assertIn(metric, drawn)


class IamTest(unittest.TestCase):
    """What each function's role and the state machine's role may do, from their Policies
    (SAM policy templates expanded as POLICY_TEMPLATES says) and SAM's own logs grant."""

    def setUp(self):
        self.template = load()
        self.resources = self.template["Resources"]
        self.functions = {
            n for n, r in self.resources.items() if r["Type"] == "AWS::Serverless::Function"
        }
        self.grants = {name: grants(self.template, name) for name in self.functions | {MACHINE}}

    def test_every_grant_is_in_a_policy_this_test_reads(self):
        """A role, policy or global Policies outside the functions' and the state machine's
        own Policies would grant what none of these tests sees."""
        self.assertEqual(self.functions, set(FUNCTIONS))
        kinds = {r["Type"] for r in self.resources.values()}
        self.assertFalse({k for k in kinds if k.startswith("AWS::IAM::")}, "IAM resources")
        self.assertEqual(
            [n for n, r in self.resources.items() if r["Type"] == "AWS::Serverless::StateMachine"],
            [MACHINE],
        )
        globals_ = self.template.get("Globals", {}).get("Function", {})
        for key in ["Policies", "Role", "PermissionsBoundary"]:
            self.assertNotIn(key, globals_)
        for name in self.functions | {MACHINE}:
            self.assertNotIn("Role", self.resources[name]["Properties"], name)

    def test_each_role_may_do_what_the_readme_says_and_nothing_else(self):
        """An action or resource beyond docs/operating.md's role table (a DynamoDBCrudPolicy, a `*`)
        is a grant no code of the sync calls."""
        self.assertEqual(set(self.grants), set(EXPECTED_GRANTS))
        for name, expected in EXPECTED_GRANTS.items():
            with self.subTest(role=name):
                self.assertEqual(self.grants[name], expected, name)

    def test_the_run_report_function_holds_no_secret(self):
        """run-report reads no API: a Secrets Manager grant would hand the ConnectWise and
        Lansweeper keys to a function that never needs them."""
        granted = self.grants["RunReportFunction"]
        self.assertEqual(
            {g for g in granted
             if g.action.lower().startswith("secretsmanager:")
             or allowing({g}, "secretsmanager:GetSecretValue")},
            set(),
        )
        self.assertEqual({g for g in granted if allowing({g}, "kms:Decrypt")}, set())

    def test_secret_access_is_the_stack_s_secret_only(self):
        """A secret grant on `*` or another ARN lets a compromised function read every secret
        of the account; a function without it cannot start (shared::lambda::start reads it)."""
        secrets = [n for n, r in self.resources.items() if r["Type"] == "AWS::SecretsManager::Secret"]
        self.assertEqual(secrets, [SECRET])
        for name, granted in self.grants.items():
            with self.subTest(role=name):
                touching = {g for g in granted
                            if g.action.lower().startswith("secretsmanager:")
                            or allowing({g}, "secretsmanager:GetSecretValue")}
                for grant in touching:
                    self.assertEqual((grant.action, grant.resource, grant.suffix),
                                     ("secretsmanager:GetSecretValue", SECRET, ""), name)
                if name in self.functions and name != "RunReportFunction":
                    self.assertEqual(touching, READS_SECRET, f"{name} reads its SECRET_ARN")
        # The secret the functions read (SECRET_ARN) is the one their policies name.
        variables = self.template["Globals"]["Function"]["Environment"]["Variables"]
        self.assertEqual(variables["SECRET_ARN"], {"Ref": SECRET})
        for name in self.functions:
            own = self.resources[name]["Properties"].get("Environment", {}).get("Variables", {})
            self.assertNotIn("SECRET_ARN", own, name)

    def test_the_audit_retention_reaches_every_function(self):
        """Breaking it looks like: trails kept for the code's default whatever the operator
        set, or reverts that find no trail after a few days."""
        variables = self.template["Globals"]["Function"]["Environment"]["Variables"]
        self.assertEqual(variables["AUDIT_RETENTION_DAYS"], {"Ref": "AuditRetentionDays"})
        parameter = self.template["Parameters"]["AuditRetentionDays"]
        self.assertEqual((parameter["Default"], parameter["MinValue"]), (90, 1))

    def test_no_function_can_delete_from_the_table(self):
        """A function granted DeleteItem, BatchWriteItem or DeleteTable (DynamoDBCrudPolicy
        grants the first two) could wipe staging, caches, reports or another run's lease;
        only the state machine gives up the lease, and the functions never call the store's
        release in Lambda."""
        for name in sorted(self.functions):
            with self.subTest(function=name):
                for action in DELETING:
                    self.assertEqual(allowing(self.grants[name], action), set(), f"{name}: {action}")

    def test_the_state_machine_deletes_only_its_own_lease_on_the_table(self):
        """A wider delete grant, or a deleteItem task on another key or without the owner
        condition, could take away another run's lease or the table's data."""
        granted = self.grants[MACHINE]
        for action in DELETING:
            allowed = allowing(granted, action)
            expected = {Grant("dynamodb:DeleteItem", TABLE, "")} if action == "dynamodb:DeleteItem" else set()
            self.assertEqual(allowed, expected, action)
        machine = self.resources[MACHINE]["Properties"]
        substitutions = machine["DefinitionSubstitutions"]
        deletes = [
            (name, state) for name, state in tasks(definition()["States"])
            if state["Resource"].startswith("arn:aws:states:::dynamodb:")
            and state["Resource"].split(":")[-1].split(".")[0] not in ("putItem", "getItem")
        ]
        self.assertEqual(sorted(n for n, _ in deletes), [
            "ReleaseEnrichmentLease", "ReleaseEnrichmentLeaseAfterFailure",
            "ReleaseLease", "ReleaseLeaseAfterFailure",
        ])
        for name, state in deletes:
            with self.subTest(state=name):
                self.assertEqual(state["Resource"], "arn:aws:states:::dynamodb:deleteItem")
                parameters = state["Parameters"]
                self.assertEqual(substituted(parameters["TableName"], substitutions, self.resources), TABLE)
                lease = "lease/enrich" if "Enrichment" in name else "lease/sync"
                self.assertEqual(parameters["Key"], {"pk": {"S": lease}, "sk": {"S": "v"}})
                self.assertEqual(parameters.get("ConditionExpression"), "#owner = :run")
                self.assertEqual(parameters.get("ExpressionAttributeNames"), {"#owner": "owner"})
                self.assertEqual(parameters.get("ExpressionAttributeValues"),
                                 {":run": {"S.$": "$$.Execution.Name"}})

    def test_the_state_machine_invokes_only_the_stack_s_functions(self):
        """A lambda:InvokeFunction on `*` or on a function outside the stack lets the state
        machine's role run any code of the account."""
        for grant in allowing(self.grants[MACHINE], "lambda:InvokeFunction"):
            self.assertIn(grant.resource, self.functions, grant)
            self.assertIn(grant.suffix, ("", ":*", "*"), grant)
        for name in self.functions:
            self.assertEqual(allowing(self.grants[name], "lambda:InvokeFunction"), set(),
                             f"{name} invokes no function")

    def test_the_state_machine_may_call_what_its_definition_calls(self):
        """A task of the definition without its grant fails the run at that state; a grant
        no task uses is a permission nothing needs."""
        machine = self.resources[MACHINE]["Properties"]
        substitutions = machine["DefinitionSubstitutions"]
        called = set()
        for name, state in tasks(definition()["States"]):
            resource, parameters = state["Resource"], state["Parameters"]
            if resource == "arn:aws:states:::lambda:invoke":
                function = substituted(parameters["FunctionName"], substitutions, self.resources)
                called.add(Grant("lambda:InvokeFunction", function, ""))
            elif resource.startswith("arn:aws:states:::dynamodb:"):
                api = resource.split(":")[-1]
                table = substituted(parameters["TableName"], substitutions, self.resources)
                called.add(Grant("dynamodb:" + api[0].upper() + api[1:], table, ""))
            else:
                self.fail(f"{name}: {resource} is a task this test does not map to a grant")
        granted = {g for g in self.grants[MACHINE] if g.action.split(":")[0] in ("lambda", "dynamodb")}
        self.assertEqual(granted, called)

    def test_the_encoded_policy_templates_are_sam_s(self):
        """An expansion in POLICY_TEMPLATES that differs from SAM's would let a template using
        it pass the rules above with grants it does not have, or fail them with ones it has."""
        try:
            import samtranslator
        except ImportError:  # pragma: no cover - cfn-lint depends on it
            self.skipTest("aws-sam-translator is not installed")
        path = (pathlib.Path(samtranslator.__file__).parent
                / "policy_templates_data" / "policy_templates.json")
        sam = json.loads(path.read_text())["Templates"]
        for name, statements in POLICY_TEMPLATES.items():
            with self.subTest(template=name):
                theirs = []
                for statement in sam[name]["Definition"]["Statement"]:
                    specs = []
                    for resource in listed(statement["Resource"]):
                        if resource == "*":
                            specs.append((None, "*"))
                            continue
                        text, variables = resource["Fn::Sub"]
                        ((variable, parameter),) = variables.items()
                        head, tail = text.split("${%s}" % variable)
                        specs.append((parameter["Ref"], tail))
                    theirs.append((sorted(statement["Action"]), specs))
                self.assertEqual([(sorted(a), s) for a, s in statements], theirs)


class SizingTest(unittest.TestCase):
    """Each function's memory comes from `make bench` at 100,000 assets
    (infra/sizing.json, written by the benchmark), with at least 30% headroom."""

    def test_every_function_has_its_measured_peak_and_headroom(self):
        """A function whose MemorySize is under 1.3 × its measured peak (or was never
        measured) runs out of memory on a large estate."""
        sizing = json.loads((ROOT / "infra" / "sizing.json").read_text())
        self.assertGreaterEqual(sizing["assets"], 100000)
        functions = {
            name: resource
            for name, resource in load()["Resources"].items()
            if resource["Type"] == "AWS::Serverless::Function"
        }
        self.assertTrue(functions)
        for name, resource in functions.items():
            binary = resource["Metadata"]["BuildProperties"]["Binary"]
            with self.subTest(function=name):
                self.assertIn(binary, sizing["peakMB"], f"{binary} was not measured")
                memory = resource["Properties"]["MemorySize"]
                self.assertGreaterEqual(
                    memory, 1.3 * sizing["peakMB"][binary],
                    f"{binary}: {memory} MB for a measured peak of {sizing['peakMB'][binary]} MB",
                )


if __name__ == "__main__":
    unittest.main()
