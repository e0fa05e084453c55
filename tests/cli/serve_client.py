"""HTTP checks of `bitfit serve` for tests/cli/test_serve.sh (Python standard library only).

    serve_client.py PORT TMP

TMP holds sst2.tsv / rte.tsv (the first dev rows), sst2.pred / rte.pred (`bitfit predict` on
them), stsb/patch.safetensors, and a UPOS tagger pos/patch.safetensors with pos-tagged.conllu
(`bitfit predict` on the first dev sentences). The server serves task "sst2" and task "entail" (the RTE patch),
with --max-wait-ms 50 --max-inputs 16 --max-body 65536. Exits 1 after printing every failure.
"""
import csv
import http.client
import json
import math
import sys
import threading

port, tmp = int(sys.argv[1]), sys.argv[2]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def request(method, path, data=None):
    """(response, body bytes) of one request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    res = conn.getresponse()
    text = res.read()
    conn.close()
    return res, text


def call(method, path, body=None, raw=None):
    """(status, parsed JSON body) of one request on a fresh connection."""
    res, text = request(method, path, raw if raw is not None else (None if body is None else json.dumps(body).encode()))
    try:
        return res.status, json.loads(text)
    except ValueError:
        return res.status, {"unparsable body": text[:200].decode("latin-1")}


def rows(name):
    with open(f"{tmp}/{name}.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def predictions(name):
    with open(f"{tmp}/{name}.pred") as f:
        return [line.rstrip("\n").split("\t")[1] for line in f][1:]


# Concurrent mixed traffic: sst2 in requests of 4 texts, entail in requests of 3 pairs, all at once.
sst2, rte = rows("sst2"), rows("rte")
inputs = {"sst2": [r["sentence"] for r in sst2], "entail": [[r["sentence1"], r["sentence2"]] for r in rte]}
chunks = [("sst2", i, inputs["sst2"][i:i + 4]) for i in range(0, len(sst2), 4)]
chunks += [("entail", i, inputs["entail"][i:i + 3]) for i in range(0, len(rte), 3)]
got = {"sst2": [None] * len(sst2), "entail": [None] * len(rte)}


def send(task, first, xs):
    status, body = call("POST", "/v1/classify", {"task": task, "inputs": xs})
    if status != 200:
        check(False, f"classify {task}[{first}]: {status} {body}")
        return
    for k, out in enumerate(body["outputs"]):
        got[task][first + k] = out


threads = [threading.Thread(target=send, args=c) for c in chunks]
for t in threads:
    t.start()
for t in threads:
    t.join()
for task, ref in (("sst2", predictions("sst2")), ("entail", predictions("rte"))):
    labels = [o and o["label"] for o in got[task]]
    check(labels == ref, f"{task}: served labels differ from bitfit predict: {labels} vs {ref}")
    for o in got[task]:
        if o:
            p = o["probabilities"]
            check(abs(sum(p.values()) - 1) < 1e-9 and max(p, key=p.get) == o["label"], f"{task}: probabilities {o}")
status, health = call("GET", "/health")
check(status == 200 and health["status"] == "ok", f"health: {status} {health}")
check(health["requests"] == len(chunks) and health["batches"] < len(chunks),
      f"requests that arrived together were not batched together: {health}")
check(health["largest_batch"] <= 32, f"a batch over --max-batch: {health}")

# Bad requests: each a 4xx with a JSON error, and the server keeps serving.
bad = [
    ("malformed JSON", "POST", "/v1/classify", None, b'{"task": "sst2", "inputs": [', 400),
    ("not an object", "POST", "/v1/classify", [1, 2], None, 400),
    ("no task", "POST", "/v1/classify", {"inputs": ["x"]}, None, 400),
    ("unknown task", "POST", "/v1/classify", {"task": "nope", "inputs": ["x"]}, None, 404),
    ("no inputs", "POST", "/v1/classify", {"task": "sst2", "inputs": []}, None, 400),
    ("an input of the wrong type", "POST", "/v1/classify", {"task": "sst2", "inputs": [3]}, None, 400),
    ("a pair for a one-text task", "POST", "/v1/classify", {"task": "sst2", "inputs": [["a", "b"]]}, None, 400),
    ("one text for a pair task", "POST", "/v1/classify", {"task": "entail", "inputs": ["a"]}, None, 400),
    ("a triple", "POST", "/v1/classify", {"task": "entail", "inputs": [["a", "b", "c"]]}, None, 400),
    ("too many inputs", "POST", "/v1/classify", {"task": "sst2", "inputs": ["x"] * 17}, None, 413),
    ("too large a body", "POST", "/v1/classify", {"task": "sst2", "inputs": ["x" * 70000]}, None, 413),
    ("ill-formed UTF-8", "POST", "/v1/classify", None, b'{"task": "sst2", "inputs": ["\xff\xfe"]}', 400),
    ("no such endpoint", "GET", "/v2/nothing", None, None, 404),
    ("a known endpoint under another method", "GET", "/v1/classify", None, None, 405),
    ("DELETE on the task list", "DELETE", "/v1/tasks", None, None, 405),
    ("load without a path", "POST", "/v1/tasks", {"name": "x"}, None, 400),
    ("load a file that is no patch", "POST", "/v1/tasks", {"name": "x", "path": f"{tmp}/sst2.tsv"}, None, 400),
    ("load under a taken name", "POST", "/v1/tasks", {"name": "sst2", "path": f"{tmp}/stsb/patch.safetensors"}, None, 409),
    ("unload an unknown task", "DELETE", "/v1/tasks/nope", None, None, 404),
]
for what, method, path, body, raw, want in bad:
    status, reply = call(method, path, body, raw)
    err = reply.get("error", {}) if isinstance(reply, dict) else {}
    check(status == want and err.get("code") == want and err.get("message"), f"{what}: {status} {reply}")
res, _ = request("PUT", "/v1/tasks")
check(res.status == 405 and res.getheader("Allow") == "GET, POST", f"PUT /v1/tasks: {res.status}, Allow {res.getheader('Allow')}")
status, reply = call("POST", "/v1/tasks", {"name": "x", "path": f"{tmp}/sst2.tsv"})
check("sst2.tsv" in reply.get("error", {}).get("message", ""), f"a bad patch's error names its file: {reply}")

# Load and unload while classify requests are in flight; they all succeed, with the same labels.
stop = threading.Event()
steady = []


def keep_asking():
    while not stop.is_set():
        status, body = call("POST", "/v1/classify", {"task": "sst2", "inputs": inputs["sst2"][:4]})
        steady.append(status == 200 and [o["label"] for o in body["outputs"]] == predictions("sst2")[:4])


askers = [threading.Thread(target=keep_asking) for _ in range(2)]
for t in askers:
    t.start()
for _ in range(3):
    status, reply = call("POST", "/v1/tasks", {"name": "sim", "path": f"{tmp}/stsb/patch.safetensors"})
    check(status == 201 and reply.get("regression") is True and reply.get("inputs") == "pair", f"load: {status} {reply}")
    status, reply = call("POST", "/v1/classify", {"task": "sim", "inputs": [["a man plays", "a man is playing"]]})
    check(status == 200 and math.isfinite(reply["outputs"][0]["score"]), f"regression: {status} {reply}")
    status, reply = call("DELETE", "/v1/tasks/sim")
    check(status == 200, f"unload: {status} {reply}")
    status, reply = call("POST", "/v1/classify", {"task": "sim", "inputs": [["a", "b"]]})
    check(status == 404, f"classify an unloaded task: {status} {reply}")
stop.set()
for t in askers:
    t.join()
check(steady and all(steady), f"requests during load/unload: {steady.count(False)} of {len(steady)} failed")
# A tagger in the same bank: words in, one tag per word, the tags of bitfit predict; a text is
# split at spaces; a request of the wrong shape is a 400.
sentences = [[]]
for line in open(f"{tmp}/pos-tagged.conllu", encoding="utf-8"):
    cols = line.rstrip("\n").split("\t")
    if len(cols) == 10 and cols[0].isdigit():
        sentences[-1].append((cols[1], cols[3]))
    elif not line.strip() and sentences[-1]:
        sentences.append([])
sentences = [s for s in sentences if s]
status, reply = call("POST", "/v1/tasks", {"name": "tagger", "path": f"{tmp}/pos/patch.safetensors"})
check(status == 201 and reply.get("inputs") == "words" and reply.get("tagset") == "UPOS" and len(reply.get("labels", [])) == 17,
      f"load a tagger: {status} {reply}")
status, reply = call("POST", "/v1/classify", {"task": "tagger", "inputs": [[w for w, _ in s] for s in sentences]})
check(status == 200 and [o["tags"] for o in reply["outputs"]] == [[t for _, t in s] for s in sentences],
      f"tags differ from bitfit predict: {status} {reply}")
status, reply = call("POST", "/v1/classify", {"task": "tagger", "inputs": ["  The cat\tsat . "]})
check(status == 200 and reply["outputs"][0]["words"] == ["The", "cat", "sat", "."] and len(reply["outputs"][0]["tags"]) == 4,
      f"a text for a tagger: {status} {reply}")
for what, inputs in [("a number", [3]), ("no words", [[]]), ("a non-string word", [["a", 1]])]:
    status, reply = call("POST", "/v1/classify", {"task": "tagger", "inputs": inputs})
    check(status == 400 and "inputs[0]" in reply.get("error", {}).get("message", ""), f"tagger, {what}: {status} {reply}")
check(call("DELETE", "/v1/tasks/tagger")[0] == 200, "unload the tagger")

status, reply = call("GET", "/v1/tasks")
check(status == 200 and sorted(t["name"] for t in reply["tasks"]) == ["entail", "sst2"], f"tasks: {reply}")
check(call("GET", "/health")[0] == 200, "the server stopped answering")

sys.exit(1 if failures else 0)
