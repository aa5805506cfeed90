"""The SAM template as an operator relies on it: every failed, timed-out or half-failed
run reaches the alarm topic, every log group keeps its logs for the set retention, and
the dashboard draws the metrics the run-report function publishes. Parsed with
cfn-lint's CloudFormation decoder (it knows !Ref, !GetAtt and !Sub)."""

import json
import pathlib
import unittest

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


class TemplateTest(unittest.TestCase):
    def setUp(self):
        self.template = load()
        self.resources = self.template["Resources"]

    def of_type(self, kind):
        return {n: r for n, r in self.resources.items() if r["Type"] == kind}

    def test_every_alarm_notifies_the_topic(self):
        alarms = self.of_type("AWS::CloudWatch::Alarm")
        watched = {a["Properties"]["MetricName"] for a in alarms.values()}
        self.assertEqual(watched, {"ExecutionsFailed", "ExecutionsTimedOut", "RunsWithFailures", "RetirementGuardHeld"})
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

    def test_every_function_and_the_state_machine_log_with_retention(self):
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


if __name__ == "__main__":
    unittest.main()


class SizingTest(unittest.TestCase):
    """Each function's memory comes from `make bench` at 100,000 assets
    (infra/sizing.json, written by the benchmark), with at least 30% headroom."""

    def test_every_function_has_its_measured_peak_and_headroom(self):
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
