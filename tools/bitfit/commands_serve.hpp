#pragma once
// `bitfit serve`: many tasks over one frozen backbone, over HTTP + JSON (issue #10).
//
// One process holds the backbone once and a task bank of bias patches (~0.4 MB each at
// BERT-base); requests of any tasks that arrive together run as one mixed-task forward (the
// batcher: bounded wait, bounded batch). Patches load and unload while requests are in flight.
//
// HTTP is cpp-httplib's (Debian's libcpp-httplib-dev; the library llama.cpp's server is built
// on): a thread pool of connections, keep-alive, body-size limits. JSON is nlohmann's, whose parser
// also rejects ill-formed UTF-8. Every bad request gets a 4xx with a JSON body
// {"error": {"code": N, "message": "..."}} and the server keeps serving.

#include "commands_train.hpp"
#include "options.hpp"

#include <bitfit/bitfit.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <pthread.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <functional>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace bitfit::cli {

namespace serve_detail {

/// A request that cannot be served: the HTTP status and why.
struct http_error : error {
  int status;
  http_error(int s, const std::string& message) : error(message), status(s) {}
};

inline void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  // Replace, not throw, on ill-formed UTF-8: an error message may quote the bad input.
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

inline void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, {{"error", {{"code", status}, {"message", message}}}});
}

/// What a task's inputs are: 2 = [first, second] pairs, 1 = single texts (or, for a tagger, one
/// sequence of words), 0 = either (the patch's task is not a GLUE task, so nothing says).
inline int task_arity(const bank_task& t) {
  if (t.per_token()) return 1;
  try {
    return glue_task_named(t.info.task).pair() ? 2 : 1;
  } catch (const error&) {
    return 0;
  }
}

inline nlohmann::json task_json(const bank_task& t) {
  const int arity = task_arity(t);
  nlohmann::json j = {{"name", t.name},
                      {"task", t.info.task},
                      {"labels", t.info.labels},
                      {"regression", t.regression()},
                      {"inputs", t.per_token() ? "words" : arity == 2 ? "pair" : arity == 1 ? "text" : "text or pair"},
                      {"fine_tune_type", t.info.fine_tune_type},
                      {"bias_terms", t.info.bias_terms}};
  if (t.per_token()) j["tagset"] = t.info.tagset;
  return j;
}

/// A tagger's input: an array of words, or a text split at whitespace (ASCII space, tab, line
/// breaks) into words. Throws a 400 naming `where` otherwise.
inline std::vector<std::string> input_words(const nlohmann::json& x, const std::string& where) {
  std::vector<std::string> words;
  if (x.is_string()) {
    const auto& text = x.get_ref<const std::string&>();
    for (std::size_t i = text.find_first_not_of(" \t\r\n"); i != std::string::npos; i = text.find_first_not_of(" \t\r\n", i)) {
      const std::size_t end = std::min(text.find_first_of(" \t\r\n", i), text.size());
      words.push_back(text.substr(i, end - i));
      i = end;
    }
  } else if (x.is_array() && std::ranges::all_of(x, [](const auto& w) { return w.is_string(); })) {
    words = x.get<std::vector<std::string>>();
  } else {
    throw http_error(400, where + "a tagger takes an array of words or a text");
  }
  if (words.empty()) throw http_error(400, where + "no words to tag");
  return words;
}

/// A tagger's output: the words and their tags (null for a word cut at --max-length), from the
/// first token of each word, as bitfit predict reads them.
inline nlohmann::json tags_json(const task_output& o, const std::vector<std::string>& words, std::span<const int32_t> word_ids) {
  const auto C = std::size_t(o.task->head.C);
  std::vector<int> classes(word_ids.size());
  for (std::size_t t = 0; t < classes.size(); ++t) {
    const float* z = o.logits.data() + t * C;
    classes[t] = int(std::max_element(z, z + C) - z);
  }
  nlohmann::json tags = nlohmann::json::array();
  for (const int32_t c : word_predictions(word_ids, classes, words.size()))
    tags.push_back(c < 0 ? nlohmann::json() : nlohmann::json(o.task->info.labels[std::size_t(c)]));
  return {{"words", words}, {"tags", std::move(tags)}};
}

/// The request body as a JSON object, or a 400 that says what is wrong with it.
inline nlohmann::json parse_body(const httplib::Request& req) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(req.body);
  } catch (const nlohmann::json::parse_error& e) {
    throw http_error(400, std::string("malformed JSON: ") + e.what());
  }
  if (!j.is_object()) throw http_error(400, "the request body must be a JSON object");
  return j;
}

inline std::string string_field(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
    throw http_error(400, std::string("\"") + key + "\" must be a non-empty string");
  return it->get<std::string>();
}

/// One output as JSON: the label and the probability of every label (softmax of the logits), or
/// the score of a regression head.
inline nlohmann::json output_json(const task_output& o) {
  if (o.task->regression()) return {{"score", o.logits.at(0)}};
  const auto& labels = o.task->info.labels;
  // The first largest logit, as bitfit predict and the metrics choose; the softmax is shifted by it.
  const auto best = std::size_t(std::max_element(o.logits.begin(), o.logits.end()) - o.logits.begin());
  const double top = o.logits[best];
  std::vector<double> p(o.logits.size());
  double sum = 0;
  for (std::size_t c = 0; c < p.size(); ++c) sum += p[c] = std::exp(double(o.logits[c]) - top);
  nlohmann::json probs = nlohmann::json::object();
  for (std::size_t c = 0; c < p.size(); ++c) probs[labels[c]] = p[c] / sum;
  return {{"label", labels[best]}, {"probabilities", std::move(probs)}};
}

/// Limits and settings of one server.
struct serve_limits {
  std::size_t max_inputs = 256;
  int max_length = 128;
  bool read_only = false;
};

/// The HTTP routes over a bank and its batcher.
class service {
 public:
  service(task_bank& bank, batcher& queue, const bert_tokenizer& tok, serve_limits limits)
      : bank_(bank), queue_(queue), tok_(tok), limits_(limits) {}

  void route(httplib::Server& svr, std::size_t max_body) {
    add(svr, "GET", "/health", [this](const httplib::Request&, httplib::Response& res) { health(res); });
    add(svr, "GET", "/v1/tasks", [this](const httplib::Request&, httplib::Response& res) { list(res); });
    add(svr, "POST", "/v1/tasks", [this](const httplib::Request& req, httplib::Response& res) { load(req, res); });
    add(svr, "DELETE", R"(/v1/tasks/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) { unload(req, res); });
    add(svr, "POST", "/v1/classify", [this](const httplib::Request& req, httplib::Response& res) { classify(req, res); });
    // httplib's own refusals (no route, a body over the limit, an unparsable request) get the
    // same JSON error body as ours. httplib answers 404 to a known path under another method;
    // that is 405 with an Allow header (RFC 9110 §15.5.6), so a client learns the method it meant.
    svr.set_error_handler([this, max_body](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      std::string message = "HTTP " + std::to_string(res.status);
      if (res.status == 404) {
        message = "no such endpoint: " + req.method + " " + req.path;
        if (const auto allow = allowed_methods(req.path); !allow.empty()) {
          res.status = 405;
          res.set_header("Allow", allow);
          message = req.method + " is not allowed on " + req.path + " (allowed: " + allow + ")";
        }
      }
      if (res.status == 413) message = "request body larger than --max-body " + std::to_string(max_body) + " bytes";
      if (res.status == 400) message = "malformed HTTP request";
      send_error(res, res.status, message);
    });
  }

 private:
  using handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  /// A route: its handler (guarded) registered under `method`, and the method recorded for 405s.
  void add(httplib::Server& svr, const std::string& method, const std::string& pattern, handler h) {
    if (method == "GET") svr.Get(pattern, guarded(std::move(h)));
    else if (method == "POST") svr.Post(pattern, guarded(std::move(h)));
    else if (method == "DELETE") svr.Delete(pattern, guarded(std::move(h)));
    else throw std::logic_error("service::add: no httplib registration for method " + method);
    methods_.emplace_back(std::regex(pattern), method);
  }

  /// The methods routed for `path`, as an Allow header ("GET, POST"); empty for an unknown path.
  std::string allowed_methods(const std::string& path) const {
    std::string allow;
    for (const auto& [pattern, method] : methods_)
      if (std::regex_match(path, pattern)) allow += (allow.empty() ? "" : ", ") + method;
    return allow;
  }

  /// Every handler's errors become a JSON error response; nothing escapes into the server.
  static handler guarded(handler h) {
    return [h = std::move(h)](const httplib::Request& req, httplib::Response& res) {
      try {
        h(req, res);
      } catch (const http_error& e) {
        send_error(res, e.status, e.what());
      } catch (const std::exception& e) {
        send_error(res, 500, e.what());
      }
    };
  }

  void health(httplib::Response& res) const {
    const auto s = queue_.stats();
    send_json(res, 200, {{"status", "ok"}, {"tasks", bank_.tasks().size()}, {"requests", s.requests},
                         {"batches", s.batches}, {"sequences", s.sequences}, {"largest_batch", s.largest_batch}});
  }

  void list(httplib::Response& res) const {
    nlohmann::json tasks = nlohmann::json::array();
    for (const auto& t : bank_.tasks()) tasks.push_back(task_json(*t));
    send_json(res, 200, {{"tasks", std::move(tasks)}});
  }

  void check_writable() const {
    if (limits_.read_only) throw http_error(403, "this server was started with --read-only: tasks cannot be loaded or unloaded");
  }

  // POST /v1/tasks {"name": "sst2", "path": "runs/sst2/patch.safetensors", "replace": false}
  void load(const httplib::Request& req, httplib::Response& res) {
    check_writable();
    const auto j = parse_body(req);
    const std::string name = string_field(j, "name"), path = string_field(j, "path");
    const auto replace = j.find("replace");
    if (replace != j.end() && !replace->is_boolean()) throw http_error(400, "\"replace\" must be true or false");
    const bool may_replace = replace != j.end() && replace->get<bool>();
    if (!may_replace && bank_.find(name)) throw http_error(409, "task '" + name + "' is already loaded (\"replace\": true replaces it)");
    std::shared_ptr<const bank_task> t;
    try {
      t = bank_.load(name, path, may_replace);
    } catch (const error& e) {
      throw http_error(bank_.find(name) && !may_replace ? 409 : 400, e.what());
    }
    send_json(res, 201, task_json(*t));
  }

  void unload(const httplib::Request& req, httplib::Response& res) {
    check_writable();
    const std::string name = req.matches[1];
    if (!bank_.unload(name)) throw http_error(404, "unknown task '" + name + "'");
    send_json(res, 200, {{"unloaded", name}});
  }

  // POST /v1/classify {"task": "rte", "inputs": ["a text", ["a premise", "a hypothesis"], ...]}
  // A tagger: {"task": "pos", "inputs": [["The", "cat", "sat"], "or a text split at spaces", ...]}
  void classify(const httplib::Request& req, httplib::Response& res) {
    const auto j = parse_body(req);
    const std::string name = string_field(j, "task");
    const auto task = bank_.find(name);
    if (!task) throw http_error(404, "unknown task '" + name + "' (GET /v1/tasks lists the loaded ones)");
    const auto inputs = j.find("inputs");
    if (inputs == j.end() || !inputs->is_array() || inputs->empty())
      throw http_error(400, task->per_token() ? "\"inputs\" must be a non-empty array of word arrays or texts"
                                              : "\"inputs\" must be a non-empty array of texts or [first, second] pairs");
    if (inputs->size() > limits_.max_inputs)
      throw http_error(413, std::to_string(inputs->size()) + " inputs, more than --max-inputs " +
                                std::to_string(limits_.max_inputs) + " per request");
    const int arity = task_arity(*task);
    std::vector<task_input> xs;
    std::vector<std::vector<std::string>> words;  // taggers: each input's words
    std::vector<std::vector<int32_t>> word_ids;   // and the word of each token
    xs.reserve(inputs->size());
    for (std::size_t i = 0; i < inputs->size(); ++i) {
      const auto& x = (*inputs)[i];
      const std::string where = "inputs[" + std::to_string(i) + "]: ";
      if (task->per_token()) {
        words.push_back(input_words(x, where));
        try {
          auto enc = tok_.encode_words(words.back(), limits_.max_length);
          xs.push_back({name, std::move(enc.input_ids), std::move(enc.token_type_ids)});
          word_ids.push_back(std::move(enc.word_ids));
        } catch (const error& e) {  // ill-formed UTF-8
          throw http_error(400, where + e.what());
        }
        continue;
      }
      const bool text = x.is_string(), pair = x.is_array() && x.size() == 2 && x[0].is_string() && x[1].is_string();
      if (!text && !pair) throw http_error(400, where + "expected a text or a [first, second] pair of texts");
      if (text && arity == 2)
        throw http_error(400, where + "task '" + name + "' (" + task->info.task + ") takes a [first, second] pair, got one text");
      if (pair && arity == 1)
        throw http_error(400, where + "task '" + name + "' (" + task->info.task + ") takes one text, got a pair");
      try {
        const auto enc = text ? tok_.encode(x.get_ref<const std::string&>(), limits_.max_length)
                              : tok_.encode_pair(x[0].get_ref<const std::string&>(),
                                                 x[1].get_ref<const std::string&>(), limits_.max_length);
        xs.push_back({name, enc.input_ids, enc.token_type_ids});
      } catch (const error& e) {  // the tokenizer refuses the text (ill-formed UTF-8)
        throw http_error(400, where + e.what());
      }
    }
    std::vector<task_output> out;
    try {
      out = queue_.submit(std::move(xs)).get();
    } catch (const error& e) {
      // Unloaded between our look-up and the forward: as unknown as if it had never been.
      throw http_error(bank_.find(name) ? 500 : 404, e.what());
    }
    nlohmann::json outputs = nlohmann::json::array();
    for (std::size_t i = 0; i < out.size(); ++i) {
      // Replaced mid-flight by a patch with the other kind of head: this request's inputs no longer fit it.
      if (out[i].task->per_token() != task->per_token())
        throw http_error(409, "task '" + name + "' was replaced by a patch with another kind of head while the request ran");
      outputs.push_back(task->per_token() ? tags_json(out[i], words[i], word_ids[i]) : output_json(out[i]));
    }
    send_json(res, 200, {{"task", name}, {"outputs", std::move(outputs)}});
  }

  task_bank& bank_;
  batcher& queue_;
  const bert_tokenizer& tok_;
  serve_limits limits_;
  std::vector<std::pair<std::regex, std::string>> methods_;  ///< (path pattern, method) per route
};

/// "NAME=FILE" -> {NAME, FILE}; a bare FILE is named by the patch's task when loaded.
inline std::pair<std::string, std::string> split_patch_arg(const std::string& arg) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos) return {"", arg};
  check(eq > 0 && eq + 1 < arg.size(), "bitfit serve: --patch expects NAME=FILE or FILE, got '" + arg + "'");
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

}  // namespace serve_detail

inline int run_serve(int argc, char** argv) {
  using namespace serve_detail;
  options opt("serve", "Serves bias patches of many tasks over one frozen backbone: HTTP + JSON, mixed-task batches.",
              {{"-m,--model-name,--model", "DIR|NAME", "the frozen backbone every patch was trained on", "", false, true},
               {"patch", "NAME=FILE", "a task to serve (repeatable); NAME defaults to the patch's task", "", true},
               {"host", "ADDR", "address to listen on", "127.0.0.1"},
               {"port", "N", "port to listen on (0: any free port, printed at start)", "8080"},
               {"max-batch", "N", "most sequences in one forward", "32"},
               {"max-wait-ms", "MS", "longest wait of a request for others to batch with", "5"},
               {"workers", "N", "forwards that run at once (each its own batch)", "1"},
               {"worker-threads", "N", "OpenMP threads per forward (0: OMP_NUM_THREADS or every core)", "0"},
               {"max-inputs", "N", "most inputs in one request", "256"},
               {"max-body", "BYTES", "largest request body", "1048576"},
               {"max-seq-length", "N", "inputs are truncated to N tokens", "128"},
               {"threads", "N", "HTTP threads (connections served at once)", "64"},
               {"read-only", "", "refuse POST and DELETE /v1/tasks"},
               {"precision", "fp32|bf16|auto", "frozen weight matrices in fp32, or in bf16 (CPUs with AVX512-BF16 or AMX)", "fp32"}});
  if (!opt.parse(argc, argv, 2)) return 0;
  const std::string host = opt.str("host");
  const int port = int(opt.integer("port", 0, 65535));
  const batcher_options bopt{int(opt.integer("max-batch", 1, 4096)),
                             std::chrono::microseconds(opt.integer("max-wait-ms", 0, 10000) * 1000),
                             int(opt.integer("workers", 1, 256)), int(opt.integer("worker-threads", 0, 256))};
  serve_limits limits{std::size_t(opt.integer("max-inputs", 1, 1 << 20)), 0, opt.has("read-only")};
  const auto max_body = std::size_t(opt.integer("max-body", 1024, 1LL << 32));
  const auto threads = std::size_t(opt.integer("threads", 1, 4096));
  std::vector<std::pair<std::string, std::string>> patches;
  for (const auto& p : opt.list("patch")) patches.push_back(split_patch_arg(p));

  const auto model_dir = resolve_model(opt.str("model-name"));
  const auto tok = load_tokenizer(model_dir);
  auto loaded = load_backbone(model_dir, parse_precision(opt.str("precision"), "--precision"));
  limits.max_length = int(opt.integer("max-seq-length", 3, loaded.params.config.max_position_embeddings));
  const auto shared = std::make_shared<const bert_params<float>>(std::move(loaded.params));
  task_bank bank(shared, loaded.id);
  for (const auto& [name, file] : patches) {
    std::string n = name;
    if (n.empty()) {  // named by its task: read the metadata without applying anything
      bert_params<float> scratch(shared->config, false);
      task_head<float> head;
      n = apply_patch(file, scratch, head, loaded.id).task;
    }
    bank.load(n, file);
  }

  // SIGINT/SIGTERM end the server cleanly: blocked in every thread, awaited by one.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up is its own problem, not a crash

  batcher queue(bank, bopt);
  service svc(bank, queue, tok, limits);
  httplib::Server svr;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_payload_max_length(max_body);
  svr.set_keep_alive_max_count(100000);
  svr.set_tcp_nodelay(true);  // a response is one small write: Nagle + delayed ACK would add ~40 ms
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, with which a second server on a taken
  // port starts "fine" and steals half of the first one's connections.
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  svc.route(svr, max_body);
  const int bound = port == 0 ? svr.bind_to_any_port(host) : (svr.bind_to_port(host, port) ? port : -1);
  check(bound > 0, "bitfit serve: cannot listen on " + host + ":" + std::to_string(port) +
                       " (address in use, or not an address of this machine)");
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    svr.stop();
  });
  std::printf("bitfit serve: listening on http://%s:%d (%zu tasks, precision %s)\n", host.c_str(), bound,
              bank.tasks().size(), std::string(precision_name(loaded.weights)).c_str());
  std::fflush(stdout);
  const bool ok = svr.listen_after_bind();
  pthread_kill(stopper.native_handle(), SIGTERM);  // wakes the stopper if no signal came
  stopper.join();
  check(ok, "bitfit serve: the server stopped with an error");
  std::fprintf(stderr, "bitfit serve: stopped\n");
  return 0;
}

}  // namespace bitfit::cli
