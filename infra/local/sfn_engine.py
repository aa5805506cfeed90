"""The deployed form on this machine: the template's state machine executed by moto's
Step Functions interpreter, its Lambda tasks invoking the real function binaries.

One process serves two ports:

* moto's server (DynamoDB, Secrets Manager, Step Functions with
  `execute_state_machine`), whose Lambda tasks are sent to the Lambda service below
  instead of moto's own Lambda (which needs Docker); its SDK integrations
  (`dynamodb:deleteItem`) still reach moto itself;
* a Lambda service: the Invoke API (`POST /2015-03-31/functions/{name}/invocations`)
  over warm "containers", each a function binary speaking the Lambda Runtime API to a
  runtime endpoint of its own. An invocation gets the template's `Timeout` as its
  deadline (divided by the clock factor); past it the process is killed and the
  invocation answers `Sandbox.Timedout`, as Lambda does. Past the template's
  `MemorySize` (the process's peak resident memory) it is killed and answers
  `Runtime.OutOfMemory`.

One clock factor compresses the time the state machine spends: Wait states, the
Retry intervals, the execution's `TimeoutSeconds` and the functions' timeouts.

Engine endpoints (this service's own, under `/_engine/`):
`POST /_engine/configure` {"parameters": {...}, "resources": {...}, "env": {...},
"clockFactor": f, "functions": {name: {"timeoutSeconds": s, "memoryMb": m}}} sets the
functions' environment, the template's (`Globals` and each function's, its `!Ref`s
resolved from the parameters given and the resources' local names) and what only a test
adds (`env`, never a variable the template sets), and the overrides; warm containers are
stopped, so the next invocation starts with it. `GET /_engine/stats`
answers per function invocations, outcomes, peak memory and longest duration.

    python infra/local/sfn_engine.py --moto-port P --lambda-port Q --bin-dir target/debug \
        --template template.yaml --definition infra/statemachine/sync.asl.json \
        --table lscw-sync --definition-out /tmp/sync.json
"""

import argparse
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNT = "123456789012"
REGION = "us-east-1"
# Lambda's own limits.
MAX_PAYLOAD = 6 * 1024 * 1024
INIT_SECONDS = 10.0
# How often a running invocation's process is looked at (memory, exit).
POLL_SECONDS = 0.05


def log(message):
    print(f"[engine] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# The template: functions, their limits and the state machine's substitutions.


def load_template(path):
    """The SAM template as plain data; CloudFormation's short tags (`!Ref`, `!GetAtt`,
    `!Sub`...) become `{"Ref": ...}` / `{"Fn::GetAtt": ...}` mappings."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def tagged(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "Ref":
            return {"Ref": value}
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", tagged)
    with open(path, encoding="utf-8") as file:
        return yaml.load(file, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def functions_of(template):
    """Binary name -> {"resource", "timeoutSeconds", "memoryMb"} for every function."""
    globals_ = template.get("Globals", {}).get("Function", {})
    found = {}
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        if not binary:
            raise ValueError(f"{name} names no binary (Metadata.BuildProperties.Binary)")
        properties = resource.get("Properties", {})
        found[binary] = {
            "resource": name,
            "timeoutSeconds": float(properties.get("Timeout", globals_.get("Timeout", 3))),
            "memoryMb": int(properties.get("MemorySize", globals_.get("MemorySize", 128))),
        }
    return found


def template_environment(template, parameters, resources):
    """Binary name -> the environment the template gives that function: `Globals`' then
    its own, each `!Ref` resolved as CloudFormation resolves it (a parameter to the value
    given, else its `Default`; a resource to the name given for it). Fails on a value it
    cannot resolve, so a variable the functions need cannot go missing unnoticed."""
    declared = template.get("Parameters", {})

    def resolve(name, value):
        if isinstance(value, (str, int, float, bool)):
            return str(value).lower() if isinstance(value, bool) else str(value)
        if isinstance(value, dict) and set(value) == {"Ref"}:
            ref = value["Ref"]
            if ref in declared:
                if ref in parameters:
                    return str(parameters[ref])
                if "Default" in declared[ref]:
                    return str(declared[ref]["Default"])
                raise ValueError(f"{name}: parameter {ref} has no value and no Default")
            if ref in resources:
                return str(resources[ref])
        raise ValueError(f"{name}: cannot resolve {value}")

    unknown = set(parameters) - set(declared)
    if unknown:
        raise ValueError(f"no such parameters in the template: {sorted(unknown)}")
    globals_ = template.get("Globals", {}).get("Function", {})
    shared = globals_.get("Environment", {}).get("Variables", {})
    found = {}
    for binary, function in functions_of(template).items():
        properties = template["Resources"][function["resource"]].get("Properties", {})
        own = properties.get("Environment", {}).get("Variables", {})
        variables = {**shared, **own}
        found[binary] = {name: resolve(name, value) for name, value in variables.items()}
    return found


def function_arn(binary):
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{binary}"


def fill_definition(template, definition, table):
    """The state machine's definition with its `DefinitionSubstitutions` filled as
    CloudFormation fills them: a function's `Arn` names its binary, the table is
    `table`. Fails on a substitution it cannot fill."""
    functions = {f["resource"]: binary for binary, f in functions_of(template).items()}
    machines = [
        r
        for r in template["Resources"].values()
        if r.get("Type") == "AWS::Serverless::StateMachine"
    ]
    if len(machines) != 1:
        raise ValueError(f"{len(machines)} state machines in the template, one expected")
    substitutions = machines[0]["Properties"].get("DefinitionSubstitutions", {})
    for key, value in substitutions.items():
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            resource, attribute = value["Fn::GetAtt"]
            if resource not in functions or attribute != "Arn":
                raise ValueError(f"cannot fill {key}: {value}")
            filled = function_arn(functions[resource])
        elif isinstance(value, dict) and "Ref" in value:
            resource = template["Resources"].get(value["Ref"], {})
            if resource.get("Type") != "AWS::DynamoDB::Table":
                raise ValueError(f"cannot fill {key}: {value}")
            filled = table
        elif isinstance(value, str):
            filled = value
        else:
            raise ValueError(f"cannot fill {key}: {value}")
        definition = definition.replace("${" + key + "}", filled)
    if "${" in definition:
        start = definition.index("${")
        raise ValueError(f"unfilled substitution {definition[start:start + 60]}")
    return definition


# ---------------------------------------------------------------------------------------
# The Lambda service.


def memory_kb(pid):
    """(VmRSS, VmHWM) of a process in kB, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            fields = dict(
                line.split(":", 1) for line in status.read().splitlines() if ":" in line
            )
        return (int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0]))
    except (OSError, KeyError, ValueError):
        return None


class Invocation:
    def __init__(self, payload):
        self.id = str(uuid.uuid4())
        self.payload = payload
        self.deadline = None  # epoch seconds, set when the runtime takes the event
        self.done = threading.Event()
        self.error = None  # (errorType, body) when the function failed
        self.body = b""

    def finish(self, body, error=None):
        if not self.done.is_set():
            self.body, self.error = body, error
            self.done.set()


class Container:
    """One execution environment: a function process and its Runtime API endpoint."""

    def __init__(self, engine, function):
        self.engine = engine
        self.function = function
        self.events = queue.Queue()
        self.current = None
        self.init_error = None
        self.started = time.time()
        self.peak_kb = 0
        container = self

        class Runtime(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                container.serve_next(self)

            def do_POST(self):
                container.serve_post(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        port = self.server.server_address[1]
        limits = engine.limits(function)
        env = dict(os.environ)
        env.update(engine.function_env.get(function, {}))
        env.update(engine.env)
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
                "AWS_LAMBDA_FUNCTION_NAME": function,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(limits["memoryMb"]),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function}",
                "AWS_LAMBDA_LOG_STREAM_NAME": uuid.uuid4().hex,
                "AWS_REGION": env.get("AWS_REGION", REGION),
            }
        )
        binary = os.path.join(engine.bin_dir, function)
        # In the engine's process group: stopping the engine's group stops them all.
        self.process = subprocess.Popen([binary], env=env, stdin=subprocess.DEVNULL)

    # The Runtime API, as the function's runtime calls it.
    def serve_next(self, request):
        if not request.path.endswith("/runtime/invocation/next"):
            request.send_error(404)
            return
        invocation = self.events.get()
        self.current = invocation
        limits = self.engine.limits(self.function)
        invocation.deadline = time.time() + limits["timeoutSeconds"] / self.engine.clock
        request.send_response(200)
        for header, value in (
            ("Lambda-Runtime-Aws-Request-Id", invocation.id),
            ("Lambda-Runtime-Deadline-Ms", str(int(invocation.deadline * 1000))),
            ("Lambda-Runtime-Invoked-Function-Arn", function_arn(self.function)),
            ("Lambda-Runtime-Trace-Id", f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(invocation.payload))),
        ):
            request.send_header(header, value)
        request.end_headers()
        request.wfile.write(invocation.payload)

    def serve_post(self, request):
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        parts = request.path.split("/")
        current = self.current
        if request.path.endswith("/runtime/init/error"):
            self.init_error = body or b'{"errorType":"Runtime.InitError"}'
        elif current is not None and len(parts) >= 6 and parts[-2] == current.id:
            if parts[-1] == "response":
                if len(body) > MAX_PAYLOAD:
                    current.finish(
                        json.dumps(
                            {
                                "errorType": "Function.ResponseSizeTooLarge",
                                "errorMessage": f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes).",
                            }
                        ).encode(),
                        "Function.ResponseSizeTooLarge",
                    )
                else:
                    current.finish(body)
            elif parts[-1] == "error":
                kind = request.headers.get("Lambda-Runtime-Function-Error-Type", "Unhandled")
                current.finish(body, kind)
            else:
                request.send_error(404)
                return
        else:
            request.send_error(400)
            return
        request.send_response(202)
        request.send_header("Content-Length", "0")
        request.end_headers()

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        if self.alive():
            self.process.kill()
        self.process.wait()
        self.server.shutdown()
        self.server.server_close()

    def run(self, invocation, stats):
        """Hands the invocation to the process and watches it until it answers, runs past
        its deadline or memory, or dies. Answers whether the container stays warm."""
        limits = self.engine.limits(self.function)
        limit_kb = limits["memoryMb"] * 1024
        self.events.put(invocation)
        while not invocation.done.wait(POLL_SECONDS):
            memory = memory_kb(self.process.pid)
            if memory is not None:
                self.peak_kb = max(self.peak_kb, memory[1])
                stats.memory(self.peak_kb)
            if self.init_error is not None:
                invocation.finish(self.init_error, "Runtime.InitError")
            elif memory is not None and memory[1] > limit_kb:
                stats.outcome("outOfMemory")
                invocation.finish(
                    json.dumps(
                        {
                            "errorType": "Runtime.OutOfMemory",
                            "errorMessage": f"RequestId: {invocation.id} Error: Runtime exited with error: signal: killed (peak {memory[1] // 1024} MB of {limits['memoryMb']} MB)",
                        }
                    ).encode(),
                    "Runtime.OutOfMemory",
                )
            elif not self.alive():
                invocation.finish(
                    json.dumps(
                        {
                            "errorType": "Runtime.ExitError",
                            "errorMessage": f"RequestId: {invocation.id} Error: Runtime exited with error: exit status {self.process.returncode}",
                        }
                    ).encode(),
                    "Runtime.ExitError",
                )
            elif invocation.deadline is not None and time.time() > invocation.deadline:
                stats.outcome("timedOut")
                seconds = limits["timeoutSeconds"]
                invocation.finish(
                    json.dumps(
                        {
                            "errorType": "Sandbox.Timedout",
                            "errorMessage": f"RequestId: {invocation.id} Error: Task timed out after {seconds:.2f} seconds",
                        }
                    ).encode(),
                    "Sandbox.Timedout",
                )
            elif invocation.deadline is None and time.time() - self.started > INIT_SECONDS + 5:
                invocation.finish(
                    json.dumps(
                        {
                            "errorType": "Runtime.InitTimeout",
                            "errorMessage": "the function's runtime did not ask for its event in time",
                        }
                    ).encode(),
                    "Runtime.InitTimeout",
                )
        # The process's peak since it began (VmHWM) once more, now that it answered: a
        # spike past the memory between two looks (an allocation made and freed within
        # one poll, then a quick answer) kills the sandbox in Lambda all the same.
        memory = memory_kb(self.process.pid)
        if memory is not None:
            self.peak_kb = max(self.peak_kb, memory[1])
            stats.memory(self.peak_kb)
            if memory[1] > limit_kb and invocation.error != "Runtime.OutOfMemory":
                stats.outcome("outOfMemory")
                invocation.error = "Runtime.OutOfMemory"
                invocation.body = json.dumps(
                    {
                        "errorType": "Runtime.OutOfMemory",
                        "errorMessage": f"RequestId: {invocation.id} Error: Runtime exited with error: signal: killed (peak {memory[1] // 1024} MB of {limits['memoryMb']} MB)",
                    }
                ).encode()
        # A function's own error leaves its process warm; a stop or a crash does not.
        stopped = (invocation.error or "").startswith(("Sandbox.", "Runtime."))
        return self.alive() and not stopped


class FunctionStats:
    def __init__(self):
        self.lock = threading.Lock()
        self.data = {
            "invocations": 0,
            "errors": 0,
            "timedOut": 0,
            "outOfMemory": 0,
            "coldStarts": 0,
            "peakMemoryKb": 0,
            "maxDurationMs": 0,
            "totalDurationMs": 0,
        }

    def memory(self, kb):
        with self.lock:
            self.data["peakMemoryKb"] = max(self.data["peakMemoryKb"], kb)

    def outcome(self, key, by=1):
        with self.lock:
            self.data[key] += by

    def duration(self, ms):
        with self.lock:
            self.data["maxDurationMs"] = max(self.data["maxDurationMs"], ms)
            self.data["totalDurationMs"] += ms


class Engine:
    def __init__(self, bin_dir, functions, template=None):
        self.bin_dir = bin_dir
        self.functions = functions
        self.template = template
        self.function_env = {}
        self.overrides = {}
        self.env = {}
        self.clock = 1.0
        self.lock = threading.Lock()
        self.idle = {name: [] for name in functions}
        self.stats = {name: FunctionStats() for name in functions}
        # Every process started, warm or busy: all stopped with the engine.
        self.containers = set()

    def limits(self, function):
        limits = dict(self.functions[function])
        limits.update(self.overrides.get(function, {}))
        return limits

    def configure(self, body):
        with self.lock:
            if self.template is not None:
                # The functions' environment is the template's: the test names only the
                # parameters and the resources, never the variables themselves.
                self.function_env = template_environment(
                    self.template, body.get("parameters", {}), body.get("resources", {})
                )
            if "env" in body:
                env = {str(k): str(v) for k, v in body["env"].items()}
                declared = {name for vars_ in self.function_env.values() for name in vars_}
                clash = sorted(declared & set(env))
                if clash:
                    raise ValueError(f"{clash} come from the template: give its parameters")
                self.env = env
            if "clockFactor" in body:
                self.clock = float(body["clockFactor"])
                if self.clock <= 0:
                    raise ValueError("clockFactor must be positive")
            for name, override in body.get("functions", {}).items():
                if name not in self.functions:
                    raise ValueError(f"no function {name}")
                self.overrides[name] = {
                    k: (float(v) if k == "timeoutSeconds" else int(v))
                    for k, v in override.items()
                    if k in ("timeoutSeconds", "memoryMb")
                }
            stale = [c for containers in self.idle.values() for c in containers]
            self.idle = {name: [] for name in self.functions}
            self.containers.difference_update(stale)
        for container in stale:
            container.stop()

    def snapshot(self):
        answer = {}
        for name, stats in self.stats.items():
            with stats.lock:
                answer[name] = dict(stats.data)
            answer[name].update(self.limits(name))
        return {"clockFactor": self.clock, "functions": answer}

    def invoke(self, function, payload):
        """(error type or None, body) of one synchronous invocation."""
        stats = self.stats[function]
        with self.lock:
            container = self.idle[function].pop() if self.idle[function] else None
        if container is None or not container.alive():
            container = Container(self, function)
            with self.lock:
                self.containers.add(container)
            stats.outcome("coldStarts")
        stats.outcome("invocations")
        invocation = Invocation(payload)
        started = time.time()
        warm = container.run(invocation, stats)
        elapsed = int((time.time() - started) * 1000)
        stats.duration(elapsed)
        if invocation.error is not None:
            stats.outcome("errors")
        if warm:
            with self.lock:
                self.idle[function].append(container)
        else:
            with self.lock:
                self.containers.discard(container)
            container.stop()
        log(f"{function} {invocation.id} {elapsed} ms {invocation.error or 'ok'}")
        return invocation.error, invocation.body

    def stop(self):
        with self.lock:
            containers = list(self.containers)
            self.idle = {name: [] for name in self.functions}
        for container in containers:
            container.stop()


def lambda_handler(engine):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, status, body, headers=()):
            self.send_response(status)
            for header, value in headers:
                self.send_header(header, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def refuse(self, status, kind, message):
            self.answer(
                status,
                json.dumps({"Type": "User", "message": message}).encode(),
                (("x-amzn-ErrorType", kind), ("Content-Type", "application/json")),
            )

        def do_GET(self):
            if self.path == "/_engine/stats":
                self.answer(200, json.dumps(engine.snapshot()).encode())
            else:
                self.refuse(404, "ResourceNotFoundException", "no such resource")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path == "/_engine/configure":
                try:
                    engine.configure(json.loads(body or b"{}"))
                except (ValueError, TypeError, AttributeError) as error:
                    self.refuse(400, "InvalidParameterValueException", str(error))
                    return
                self.answer(200, b"{}")
                return
            parts = self.path.split("?")[0].split("/")
            if len(parts) != 5 or parts[1] != "2015-03-31" or parts[4] != "invocations":
                self.refuse(404, "ResourceNotFoundException", f"no route {self.path}")
                return
            name = urllib.parse.unquote(parts[3]).split(":function:")[-1].split(":")[0]
            if name not in engine.functions:
                self.refuse(
                    404,
                    "ResourceNotFoundException",
                    f"Function not found: {function_arn(name)}",
                )
                return
            if len(body) > MAX_PAYLOAD:
                self.refuse(413, "RequestTooLargeException", "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
                return
            error, answer = engine.invoke(name, body or b"{}")
            headers = [("X-Amz-Executed-Version", "$LATEST"), ("Content-Type", "application/json")]
            if error is not None:
                headers.append(("X-Amz-Function-Error", "Unhandled"))
            self.answer(200, answer, headers)

    return Handler


# ---------------------------------------------------------------------------------------
# moto, with its Lambda tasks sent here and its clocks compressed.


def patch_moto(engine, lambda_port):
    import boto3
    from botocore.config import Config
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.program import program
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        lambda_eval_utils,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
        wait_function,
    )

    original = lambda_eval_utils.boto_client_for

    def client_for(region, service, state_credentials=None):
        if service != "lambda":
            return original(region, service, state_credentials)
        return boto3.client(
            "lambda",
            region_name=region,
            endpoint_url=f"http://127.0.0.1:{lambda_port}",
            aws_access_key_id="ak",
            aws_secret_access_key="sk",
            config=Config(
                parameter_validation=False,
                retries={"max_attempts": 0, "total_max_attempts": 1},
                connect_timeout=60,
                read_timeout=99999999,
            ),
        )

    lambda_eval_utils.boto_client_for = client_for

    # Wait states: the compressed seconds, on the execution's own event (so a stopped
    # execution stops waiting).
    def wait_interval(self, env, wait_seconds):
        if wait_seconds > 0:
            env.program_state_event.wait(wait_seconds / engine.clock)

    wait_function.WaitFunction._wait_interval = wait_interval

    # Retry intervals.
    class CompressedTime:
        def __getattr__(self, name):
            return getattr(time, name)

        @staticmethod
        def sleep(seconds):
            time.sleep(seconds / engine.clock)

    retrier_decl.time = CompressedTime()

    # The execution's TimeoutSeconds (Program.eval with the compressed timeout).
    def eval_compressed(self, env):
        timeout = self.timeout_seconds
        seconds = None
        if timeout is not None and not timeout.is_default_value():
            seconds = timeout.timeout_seconds / engine.clock
        env.next_state_name = self.start_at.start_at_name
        worker = threading.Thread(
            target=super(program.Program, self).eval, args=(env,), daemon=True
        )
        program.TMP_THREADS.append(worker)
        worker.start()
        worker.join(timeout=seconds)
        if worker.is_alive():
            env.set_timed_out()

    program.Program.eval = eval_compressed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moto-port", type=int, required=True)
    parser.add_argument("--lambda-port", type=int, required=True)
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--template", required=True)
    parser.add_argument("--definition", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--definition-out", required=True)
    args = parser.parse_args()

    template = load_template(args.template)
    functions = functions_of(template)
    for binary in functions:
        path = os.path.join(args.bin_dir, binary)
        if not os.access(path, os.X_OK):
            sys.exit(f"{path} is missing: build the functions (cargo build -p {binary})")
    with open(args.definition, encoding="utf-8") as file:
        filled = fill_definition(template, file.read(), args.table)
    with open(args.definition_out, "w", encoding="utf-8") as file:
        file.write(filled)

    # moto reaches its own services (the state machine's SDK integrations) here.
    os.environ["MOTO_PORT"] = str(args.moto_port)
    # One line per request is noise next to the functions' logs.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.core.config import default_user_config
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    engine = Engine(args.bin_dir, functions, template)
    patch_moto(engine, args.lambda_port)
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=args.moto_port, verbose=False)
    moto.start()

    server = ThreadingHTTPServer(("127.0.0.1", args.lambda_port), lambda_handler(engine))
    server.daemon_threads = True

    def stop(*_):
        engine.stop()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"moto on {args.moto_port}, Lambda on {args.lambda_port}: {', '.join(functions)}")
    server.serve_forever()


if __name__ == "__main__":
    main()
