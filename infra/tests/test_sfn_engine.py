"""The local engine's Lambda side as Lambda behaves: the template's substitutions filled
from its own resources, an invocation answered through the Runtime API by a warm
process, stopped at its deadline (`Sandbox.Timedout`) and past its memory
(`Runtime.OutOfMemory`), its deadline compressed by the clock factor. The functions
here are small scripts speaking the Runtime API, so the test needs no build."""

import json
import os
import pathlib
import stat
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
from http.server import ThreadingHTTPServer

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra" / "local"))

import sfn_engine  # noqa: E402

# A function: takes events from the Runtime API and does what each says.
FAKE = """#!{python}
import json, os, time, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
held = []
while True:
    with urllib.request.urlopen(api + "next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        deadline = int(r.headers["Lambda-Runtime-Deadline-Ms"])
        event = json.loads(r.read())
    if "sleep" in event:
        time.sleep(event["sleep"])
    if "allocateMb" in event:
        held.append(bytearray(event["allocateMb"] * 1024 * 1024))
        time.sleep(1)
    if "spikeMb" in event:
        spike = b"\\x01" * (event["spikeMb"] * 1024 * 1024)
        del spike
    if event.get("fail"):
        body = json.dumps({{"errorType": "Permanent", "errorMessage": "asked to fail"}}).encode()
        urllib.request.urlopen(urllib.request.Request(api + request_id + "/error", data=body, method="POST")).read()
        continue
    answer = {{"pid": os.getpid(), "leftMs": deadline - int(time.time() * 1000)}}
    urllib.request.urlopen(urllib.request.Request(api + request_id + "/response", data=json.dumps(answer).encode(), method="POST")).read()
"""


class TemplateTest(unittest.TestCase):
    def test_every_substitution_is_filled_from_the_template(self):
        template = sfn_engine.load_template(ROOT / "template.yaml")
        functions = sfn_engine.functions_of(template)
        self.assertEqual(functions["bulk-create"]["timeoutSeconds"], 300)
        self.assertEqual(functions["match"]["memoryMb"], 640)
        definition = (ROOT / "infra/statemachine/sync.asl.json").read_text()
        filled = sfn_engine.fill_definition(template, definition, "the-table")
        self.assertNotIn("${", filled)
        parsed = json.loads(filled)
        resources = set()

        def walk(node):
            if isinstance(node, dict):
                if isinstance(node.get("FunctionName"), str):
                    resources.add(node["FunctionName"].rsplit(":", 1)[1])
                if node.get("TableName"):
                    self.assertEqual(node["TableName"], "the-table")
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(parsed)
        self.assertTrue(resources)
        self.assertLessEqual(resources, set(functions))

    def test_the_functions_get_the_environment_the_template_gives_them(self):
        """Breaking it looks like: a variable deleted from template.yaml (SYNC_TABLE) that
        every deployed function needs, while the tests hand the functions their own list."""
        template = sfn_engine.load_template(ROOT / "template.yaml")
        env = sfn_engine.template_environment(
            template,
            {"ConnectWiseSite": "", "TargetCompany": "Acme"},
            {"SyncTable": "the-table", "Credentials": "arn:secret"},
        )
        self.assertEqual(set(env), set(sfn_engine.functions_of(template)))
        for binary, variables in env.items():
            with self.subTest(function=binary):
                self.assertEqual(variables["SYNC_TABLE"], "the-table")
                self.assertEqual(variables["SECRET_ARN"], "arn:secret")
                self.assertEqual(variables["CW_TARGET_COMPANY"], "Acme")
                self.assertEqual(variables["AUDIT_RETENTION_DAYS"], "90", "its Default")
        del template["Globals"]["Function"]["Environment"]["Variables"]["SYNC_TABLE"]
        env = sfn_engine.template_environment(
            template,
            {"ConnectWiseSite": ""},
            {"SyncTable": "the-table", "Credentials": "arn:secret"},
        )
        self.assertNotIn("SYNC_TABLE", env["match"], "what the template lacks, the functions lack")

    def test_a_value_the_template_cannot_resolve_or_a_test_sets_itself_is_refused(self):
        template = sfn_engine.load_template(ROOT / "template.yaml")
        resources = {"SyncTable": "t", "Credentials": "s"}
        with self.assertRaisesRegex(ValueError, "ConnectWiseSite"):
            sfn_engine.template_environment(template, {}, resources)
        with self.assertRaisesRegex(ValueError, "SyncTable"):
            sfn_engine.template_environment(template, {"ConnectWiseSite": ""}, {"Credentials": "s"})
        with self.assertRaisesRegex(ValueError, "no such parameters"):
            sfn_engine.template_environment(template, {"ConnectWiseSite": "", "Nope": "x"}, resources)
        engine = sfn_engine.Engine("/nonexistent", sfn_engine.functions_of(template), template)
        with self.assertRaisesRegex(ValueError, "come from the template"):
            engine.configure(
                {
                    "parameters": {"ConnectWiseSite": ""},
                    "resources": resources,
                    "env": {"SYNC_TABLE": "elsewhere"},
                }
            )

    def test_an_unknown_substitution_fails(self):
        template = sfn_engine.load_template(ROOT / "template.yaml")
        with self.assertRaises(ValueError):
            sfn_engine.fill_definition(template, '{"x": "${NotInTheTemplate}"}', "t")


class LambdaServiceTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        path = pathlib.Path(self.directory.name) / "fake"
        path.write_text(FAKE.format(python=sys.executable))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
        self.engine = sfn_engine.Engine(
            self.directory.name, {"fake": {"resource": "Fake", "timeoutSeconds": 2.0, "memoryMb": 64}}
        )
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), sfn_engine.lambda_handler(self.engine))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def tearDown(self):
        self.engine.stop()
        self.server.shutdown()
        self.server.server_close()
        self.directory.cleanup()

    def invoke(self, payload, name="fake"):
        port = self.server.server_address[1]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/2015-03-31/functions/"
            f"arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3A{name}/invocations",
            data=json.dumps(payload).encode(),
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.headers.get("X-Amz-Function-Error"), json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def stats(self):
        return self.engine.snapshot()["functions"]["fake"]

    def test_a_warm_process_answers_again_with_its_deadline(self):
        error, first = self.invoke({})
        self.assertIsNone(error)
        self.assertTrue(0 < first["leftMs"] <= 2000, first)
        _, second = self.invoke({})
        self.assertEqual(first["pid"], second["pid"], "the warm process answered")
        self.assertEqual(self.stats()["coldStarts"], 1)

    def test_the_clock_factor_divides_the_deadline(self):
        self.engine.configure({"clockFactor": 4})
        _, answer = self.invoke({})
        self.assertTrue(0 < answer["leftMs"] <= 500, answer)

    def test_past_its_deadline_the_process_is_stopped(self):
        _, warm = self.invoke({})
        started = time.time()
        error, answer = self.invoke({"sleep": 10})
        self.assertLess(time.time() - started, 5)
        self.assertEqual(error, "Unhandled")
        self.assertEqual(answer["errorType"], "Sandbox.Timedout")
        self.assertIn("Task timed out after 2.00 seconds", answer["errorMessage"])
        _, after = self.invoke({})
        self.assertNotEqual(after["pid"], warm["pid"], "a new process after the stop")
        with self.assertRaises(ProcessLookupError):
            os.kill(warm["pid"], 0)
        self.assertEqual(self.stats()["timedOut"], 1)

    def test_past_its_memory_the_process_is_stopped(self):
        error, answer = self.invoke({"allocateMb": 100})
        self.assertEqual(error, "Unhandled")
        self.assertEqual(answer["errorType"], "Runtime.OutOfMemory")
        self.assertEqual(self.stats()["outOfMemory"], 1)
        self.assertGreater(self.stats()["peakMemoryKb"], 64 * 1024)

    def test_a_spike_past_its_memory_answered_at_once_is_caught(self):
        """Breaking it looks like: a function that peaks past its MemorySize between two
        looks and answers quickly passes (a 64 MB function at ~100 MB, once in a few).
        The looks are made rarer than the invocation lasts, so only the look after the
        answer can see the spike."""
        poll = sfn_engine.POLL_SECONDS
        sfn_engine.POLL_SECONDS = 30
        self.addCleanup(setattr, sfn_engine, "POLL_SECONDS", poll)
        for _ in range(3):
            error, answer = self.invoke({"spikeMb": 100})
            self.assertEqual(error, "Unhandled", answer)
            self.assertEqual(answer["errorType"], "Runtime.OutOfMemory")
        self.assertEqual(self.stats()["outOfMemory"], 3)
        self.assertEqual(self.stats()["coldStarts"], 3, "each killed sandbox starts anew")

    def test_a_function_error_is_unhandled_and_the_process_stays_warm(self):
        _, warm = self.invoke({})
        error, answer = self.invoke({"fail": True})
        self.assertEqual(error, "Unhandled")
        self.assertEqual(answer, {"errorType": "Permanent", "errorMessage": "asked to fail"})
        _, after = self.invoke({})
        self.assertEqual(after["pid"], warm["pid"])

    def test_an_unknown_function_is_not_found(self):
        status, answer = self.invoke({}, name="nope")
        self.assertEqual(status, 404)
        self.assertIn("Function not found", answer["message"])


if __name__ == "__main__":
    unittest.main()


class MotoPatchTest(unittest.TestCase):
    """The engine patches moto's Step Functions interpreter in four places (the Lambda
    client, Wait, Retry's sleep, the execution's timeout). Setting an attribute always
    succeeds, so a moto that moved one of them would leave a patch silently doing
    nothing: each is checked to be where this moto (pinned in the Makefile) calls it."""

    def test_each_patched_place_is_where_moto_calls_it(self):
        import inspect

        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.program import program
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
            lambda_eval_utils,
        )
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
            wait_function,
        )

        self.assertTrue(callable(lambda_eval_utils.boto_client_for))
        calls_client = inspect.getsource(lambda_eval_utils)
        self.assertIn("boto_client_for(", calls_client)
        wait_source = inspect.getsource(wait_function.WaitFunction)
        self.assertIn("def _wait_interval", wait_source)
        self.assertIn("self._wait_interval(", wait_source)
        self.assertIn("time.sleep(", inspect.getsource(retrier_decl))
        program_source = inspect.getsource(program.Program)
        self.assertIn("def eval(", program_source)
        self.assertIn("timeout_seconds", program_source)
        self.assertTrue(hasattr(program, "TMP_THREADS"))

    def test_the_patches_are_in_effect(self):
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.program import program
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
            wait_function,
        )

        saved = (
            wait_function.WaitFunction._wait_interval,
            retrier_decl.time,
            program.Program.eval,
        )

        def restore():
            (
                wait_function.WaitFunction._wait_interval,
                retrier_decl.time,
                program.Program.eval,
            ) = saved

        self.addCleanup(restore)
        engine = sfn_engine.Engine("/nonexistent", {})
        engine.clock = 100.0
        sfn_engine.patch_moto(engine, 1)
        started = time.time()
        retrier_decl.time.sleep(2.0)
        self.assertLess(time.time() - started, 0.5, "a Retry's interval is compressed")

        class Env:
            program_state_event = threading.Event()

        started = time.time()
        wait_function.WaitFunction._wait_interval(None, Env(), 2.0)
        self.assertLess(time.time() - started, 0.5, "a Wait is compressed")
        self.assertIsNot(program.Program.eval, saved[2])
