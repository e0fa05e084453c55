// A closed-loop HTTP load generator for `bitfit serve` (issue #10, docs/SERVING.md): C connections,
// each sending POST /v1/classify one after another for D seconds, tasks in mixed order, each task
// to its own port (one server holding every task, or one process per task). Prints one JSON line:
// requests/s, sequences/s, latency percentiles, errors. Not a Google Benchmark: what it measures is
// another process; scripts/serve-load drives it and measures memory.
//
//   serve_load PLAN.json
//   PLAN: {"connections": 8, "seconds": 20, "warmup_seconds": 3, "inputs_per_request": 1,
//          "tasks": [{"name": "t0", "port": 8101, "inputs": ["text", ["first", "second"], ...]}, ...]}
//
// Same client for both configurations, keep-alive connections, built on cpp-httplib as the server.
#include <bitfit/core/error.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct target {
  std::string name;
  int port = 0;
  std::vector<std::string> bodies;  // ready-made request bodies, used round robin
};

int run(const std::string& plan_path) {
  std::ifstream in(plan_path);
  bitfit::check(in.good(), plan_path + ": cannot open");
  nlohmann::json plan;
  try {
    plan = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw bitfit::error(plan_path + ": " + e.what());
  }
  const int connections = plan.value("connections", 8);
  const double seconds = plan.value("seconds", 20.0), warmup = plan.value("warmup_seconds", 3.0);
  const int per_request = plan.value("inputs_per_request", 1);
  std::vector<target> targets;
  for (const auto& t : plan.at("tasks")) {
    target x{t.at("name"), t.at("port"), {}};
    const auto& inputs = t.at("inputs");
    bitfit::check(inputs.size() >= std::size_t(per_request), plan_path + ": task " + x.name + " has too few inputs");
    for (std::size_t i = 0; i + std::size_t(per_request) <= inputs.size(); i += std::size_t(per_request)) {
      nlohmann::json body = {{"task", x.name}, {"inputs", nlohmann::json::array()}};
      for (int k = 0; k < per_request; ++k) body["inputs"].push_back(inputs[i + std::size_t(k)]);
      x.bodies.push_back(body.dump());
    }
    targets.push_back(std::move(x));
  }
  bitfit::check(!targets.empty() && connections > 0, plan_path + ": no tasks or no connections");

  const auto start = clock_type::now();
  const auto measure_from = start + std::chrono::duration<double>(warmup);
  const auto stop_at = measure_from + std::chrono::duration<double>(seconds);
  std::mutex mutex;
  std::vector<double> latencies_ms;
  std::atomic<long> errors = 0;
  std::string first_error;
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c)
    threads.emplace_back([&, c] {
      std::map<int, std::unique_ptr<httplib::Client>> clients;  // one keep-alive connection per port
      std::vector<double> mine;
      for (std::size_t n = std::size_t(c);; ++n) {
        const auto now = clock_type::now();
        if (now >= stop_at) break;
        // Mixed order: connection c walks the tasks from its own offset; the input is drawn by a
        // multiplicative hash, so every K draws from all of a task's inputs, not only its first.
        const auto& t = targets[n % targets.size()];
        const auto& body = t.bodies[std::size_t((std::uint64_t(n) * 2654435761u) % t.bodies.size())];
        auto& cli = clients[t.port];
        if (!cli) {
          cli = std::make_unique<httplib::Client>("127.0.0.1", t.port);
          cli->set_keep_alive(true);
          cli->set_tcp_nodelay(true);  // headers and body are two writes: no Nagle wait between them
          cli->set_read_timeout(std::chrono::seconds(120));
        }
        const auto res = cli->Post("/v1/classify", body, "application/json");
        const auto done = clock_type::now();
        if (!res || res->status != 200) {
          ++errors;
          std::lock_guard lock(mutex);
          if (first_error.empty())
            first_error = res ? std::to_string(res->status) + " " + res->body : httplib::to_string(res.error());
          continue;
        }
        if (now >= measure_from) mine.push_back(std::chrono::duration<double, std::milli>(done - now).count());
      }
      std::lock_guard lock(mutex);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
    });
  for (auto& t : threads) t.join();
  std::ranges::sort(latencies_ms);
  auto pct = [&](double p) {
    return latencies_ms.empty() ? 0.0 : latencies_ms[std::min(latencies_ms.size() - 1, std::size_t(p * double(latencies_ms.size())))];
  };
  const nlohmann::json out = {{"tasks", targets.size()},
                              {"connections", connections},
                              {"seconds", seconds},
                              {"requests", latencies_ms.size()},
                              {"requests_per_s", double(latencies_ms.size()) / seconds},
                              {"sequences_per_s", double(latencies_ms.size()) * per_request / seconds},
                              {"p50_ms", pct(0.50)},
                              {"p99_ms", pct(0.99)},
                              {"errors", errors.load()},
                              {"first_error", first_error}};
  std::printf("%s\n", out.dump().c_str());
  return errors.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: serve_load PLAN.json\n");
    return 2;
  }
  try {
    return run(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "serve_load: %s\n", e.what());
    return 1;
  }
}
