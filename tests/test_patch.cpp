// Task patches: a save/apply round trip is exact; the backbone hash, the metadata and the tensor
// names are checked, and each failure names the file; writing is atomic.
#include "test_support.hpp"

#include <bitfit/train/patch.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

using namespace bitfit;
using bitfit::test::temp_dir;
using bitfit::test::tiny_config;
namespace fs = std::filesystem;

namespace {


/// Parameters whose every entry differs, so a misplaced tensor cannot go unnoticed.
bert_params<float> numbered_params(float offset) {
  bert_params<float> p(tiny_config(), true);
  for (std::size_t i = 0; i < p.data.size(); ++i) p.data[i] = offset + 0.001f * float(i);
  return p;
}

const std::string sha = std::string(64, 'a');

patch_info rte_info() {
  patch_info info;
  info.task = "rte";
  info.fine_tune_type = "bitfit";
  info.bias_terms = "query intermediate";
  info.backbone_id = sha;
  info.labels = {"entailment", "not_entailment"};
  info.num_labels = 2;
  return info;
}

/// Writes a patch of the bq and bm2 entries of `p` with a head of 2 labels.
fs::path write_bq_bm2_patch(const temp_dir& dir, const bert_params<float>& p, const patch_info& info) {
  std::vector<const param_entry*> entries;
  for (const auto& e : p.layout.entries)
    if (e.is_bias && (e.bias_term == term::bq || e.bias_term == term::bm2) && e.layer >= 0) entries.push_back(&e);
  task_head<float> head = task_head<float>::init(2, 8, 5);
  head.b = {0.25f, -0.5f};
  const auto path = dir / "patch.safetensors";
  save_patch(path, p, entries, head, info);
  return path;
}

/// A patch written field by field: valid metadata with `changes` applied, `tensors` plus a head.
void write_raw_patch(const fs::path& path, const std::map<std::string, std::string>& changes,
                     std::vector<tensor_to_write> tensors, bool with_head = true) {
  std::map<std::string, std::string> meta = {
      {"format", patch_format}, {"kind", "bias"}, {"task", "rte"}, {"fine_tune_type", "bitfit"},
      {"bias_terms", "output"}, {"backbone_id", sha}, {"labels", "[\"entailment\",\"not_entailment\"]"},
      {"num_labels", "2"}, {"first_trainable_layer", "0"}, {"extra", "{}"}};
  for (const auto& [k, v] : changes) meta[k] = v;
  static const std::vector<float> W(16, 0.0f), b(2, 0.0f);
  if (with_head) {
    tensors.push_back({"classifier.weight", {2, 8}, W});
    tensors.push_back({"classifier.bias", {2}, b});
  }
  write_safetensors(path, tensors, meta);
}

std::string error_of(const fs::path& patch, bert_params<float>& p, const std::string& backbone = sha) {
  task_head<float> head;
  try {
    apply_patch(patch, p, head, backbone);
  } catch (const error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("patch: apply(save(p)) restores exactly the saved tensors and the head, nothing else") {
  temp_dir dir;
  const auto trained = numbered_params(1.0f);
  const auto path = write_bq_bm2_patch(dir, trained, rte_info());
  auto backbone = numbered_params(-7.0f);
  const auto before = backbone.data;
  task_head<float> head;
  const auto info = apply_patch(path, backbone, head, sha);
  CHECK(info.task == "rte");
  CHECK(info.kind == "bias");
  CHECK(info.bias_terms == "query intermediate");
  CHECK(info.labels == std::vector<std::string>{"entailment", "not_entailment"});
  CHECK(head.C == 2);
  CHECK(head.b == std::vector<float>{0.25f, -0.5f});
  CHECK(head.W == task_head<float>::init(2, 8, 5).W);
  std::size_t replaced = 0;
  for (const auto& e : backbone.layout.entries) {
    const bool in_patch = e.is_bias && e.layer >= 0 && (e.bias_term == term::bq || e.bias_term == term::bm2);
    for (std::size_t i = e.offset; i < e.offset + e.numel; ++i) {
      CHECK(backbone.data[i] == (in_patch ? trained.data[i] : before[i]));
      replaced += in_patch;
    }
  }
  CHECK(replaced == std::size_t(2 * (8 + 16)));  // bq (H) + bm2 (I) in each of 2 layers
  // A patch is a few floats, not a model: the file holds the patch entries and the head only.
  CHECK(fs::file_size(path) < 4096);
}

TEST_CASE("patch: a bias patch refuses a backbone with another hash") {
  temp_dir dir;
  auto p = numbered_params(0.0f);
  const auto path = write_bq_bm2_patch(dir, p, rte_info());
  const auto msg = error_of(path, p, std::string(64, 'b'));
  CHECK(msg.find(path.string()) != std::string::npos);
  CHECK(msg.find("patch was trained on backbone " + sha) != std::string::npos);
}

TEST_CASE("patch: a format-1 patch (backbone named by file hash) is refused with the reason") {
  temp_dir dir;
  auto p = numbered_params(0.0f);
  write_raw_patch(dir / "v1.safetensors", {{"format", "bitfit-patch/1"}}, {});
  CHECK(error_of(dir / "v1.safetensors", p).find("bitfit-patch/1 file") != std::string::npos);
}

TEST_CASE("patch: files that are not patches or are damaged give an error naming the file") {
  temp_dir dir;
  auto p = numbered_params(0.0f);
  SUBCASE("a plain safetensors file without patch metadata") {
    const std::vector<float> v(8, 1.0f);
    const std::vector<tensor_to_write> ts = {{"pooler.dense.bias", {8}, v}};
    write_safetensors(dir / "plain.safetensors", ts);
    const auto msg = error_of(dir / "plain.safetensors", p);
    CHECK(msg.find("plain.safetensors") != std::string::npos);
    CHECK(msg.find("metadata lacks 'format'") != std::string::npos);
  }
  SUBCASE("malformed metadata") {
    write_raw_patch(dir / "bad_meta.safetensors", {{"num_labels", "two"}}, {});
    CHECK(error_of(dir / "bad_meta.safetensors", p).find("malformed patch metadata") != std::string::npos);
  }
  SUBCASE("a tensor the backbone does not have") {
    const std::vector<float> v(8, 1.0f);
    write_raw_patch(dir / "alien.safetensors", {}, {{"encoder.layer.9.output.dense.bias", {8}, v}});
    const auto msg = error_of(dir / "alien.safetensors", p);
    CHECK(msg.find("alien.safetensors") != std::string::npos);
    CHECK(msg.find("encoder.layer.9.output.dense.bias") != std::string::npos);
  }
  SUBCASE("a bias patch that carries a weight") {
    const std::vector<float> w(64, 1.0f);
    write_raw_patch(dir / "weight.safetensors", {}, {{"pooler.dense.weight", {8, 8}, w}});
    CHECK(error_of(dir / "weight.safetensors", p).find("only a full checkpoint may") != std::string::npos);
  }
  SUBCASE("no task head") {
    write_raw_patch(dir / "headless.safetensors", {}, {}, /*with_head=*/false);
    CHECK(error_of(dir / "headless.safetensors", p).find("no task head") != std::string::npos);
  }
  SUBCASE("a truncated file") {
    const auto path = write_bq_bm2_patch(dir, p, rte_info());
    fs::resize_file(path, fs::file_size(path) - 10);
    CHECK(error_of(path, p).find(path.string()) != std::string::npos);
  }
}

TEST_CASE("patch: saving into a missing directory fails cleanly and leaves no partial file") {
  temp_dir dir;
  auto p = numbered_params(0.0f);
  const auto target = dir / "missing" / "patch.safetensors";
  std::vector<const param_entry*> none;
  CHECK_THROWS_WITH_AS(save_patch(target, p, none, task_head<float>(2, 8), rte_info()),
                       doctest::Contains("missing/patch.safetensors"), error);
  CHECK_FALSE(fs::exists(target));
}

TEST_CASE("patch: saving over an existing patch replaces it whole (write, then rename)") {
  temp_dir dir;
  auto p = numbered_params(0.0f);
  const auto path = write_bq_bm2_patch(dir, p, rte_info());
  auto info = rte_info();
  info.task = "mrpc";
  write_bq_bm2_patch(dir, p, info);
  auto q = numbered_params(3.0f);
  task_head<float> head;
  CHECK(apply_patch(path, q, head, sha).task == "mrpc");
  std::size_t leftovers = 0;
  for (const auto& f : fs::directory_iterator(dir.path)) leftovers += f.path().filename() != "patch.safetensors";
  CHECK(leftovers == 0);
}

// Issue #7 (hostile input): a patch's head, its label list and num_labels must agree, since
// predictions index the label list by class id; a 7-class head on rte's 2 labels read past the list.
namespace {

/// A bias patch of task rte with `labels` (JSON), `num_labels` and a head of `rows` outputs.
fs::path write_head_patch(const temp_dir& dir, const std::string& labels, int num_labels, int rows) {
  const std::vector<float> W(std::size_t(rows) * 8, 0.0f), b(std::size_t(rows), 1e30f);
  const auto path = dir / ("head" + std::to_string(num_labels) + "x" + std::to_string(rows) + ".safetensors");
  write_raw_patch(path, {{"labels", labels}, {"num_labels", std::to_string(num_labels)}},
                  {{"classifier.weight", {rows, 8}, W}, {"classifier.bias", {rows}, b}}, /*with_head=*/false);
  return path;
}

}  // namespace

TEST_CASE("patch: num_labels, the label list and the head's shape must agree") {
  temp_dir dir;
  auto p = numbered_params(0.0f);
  const std::string two = "[\"entailment\",\"not_entailment\"]";
  SUBCASE("a 7-class head with 2 labels") {
    const auto path = write_head_patch(dir, two, 7, 7);
    const auto msg = error_of(path, p);
    CHECK(msg.find(path.string()) != std::string::npos);
    CHECK(msg.find("num_labels 7") != std::string::npos);
    CHECK(msg.find("2 labels") != std::string::npos);
  }
  SUBCASE("a 1-output (regression) head with class labels") {
    CHECK(error_of(write_head_patch(dir, two, 1, 1), p).find("num_labels 1") != std::string::npos);
  }
  SUBCASE("a 2-class head without labels") {
    CHECK(error_of(write_head_patch(dir, "[]", 2, 2), p).find("num_labels 2") != std::string::npos);
  }
  SUBCASE("a head whose shape is not num_labels") {
    const auto msg = error_of(write_head_patch(dir, two, 2, 3), p);
    CHECK(msg.find("classifier.weight") != std::string::npos);
    CHECK(msg.find("[3, 8]") != std::string::npos);
  }
  SUBCASE("consistent heads apply: 7 named classes, and regression") {
    task_head<float> head;
    const auto info = apply_patch(write_head_patch(dir, "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\"]", 7, 7), p, head, sha);
    CHECK(info.labels.size() == 7);
    CHECK(head.C == 7);
    CHECK(apply_patch(write_head_patch(dir, "[]", 1, 1), p, head, sha).labels.empty());
    CHECK(head.regression());
  }
}

#include <bitfit/train/trainer.hpp>  // accuracy(): how predictions meet class ids

#include <cmath>

TEST_CASE("patch: accuracy() compares predictions with class ids without converting them to int") {
  // A regression head's outputs (1e30, NaN) scored as classes: wrong, and no float-to-int overflow (UBSan).
  std::vector<encoded_example> xs(4);
  for (int i = 0; i < 4; ++i) xs[std::size_t(i)].label = i % 2;
  CHECK(accuracy({0.0f, 1.0f, 1e30f, std::nanf("")}, xs) == doctest::Approx(0.5));
  CHECK(accuracy({-1e30f, 1.0f, 0.0f, 0.0f}, xs) == doctest::Approx(0.5));
}

TEST_CASE("patch: metadata numbers must be whole integers and labels shallow JSON (hostile input)") {
  temp_dir dir;
  auto p = numbered_params(0.0f);
  const auto path = dir / "hostile.safetensors";
  auto expect = [&](const std::map<std::string, std::string>& changes, const std::string& needle) {
    write_raw_patch(path, changes, {});
    const auto msg = error_of(path, p);
    CHECK_MESSAGE(msg.find(path.string()) != std::string::npos, msg.substr(0, 300));
    CHECK_MESSAGE(msg.find(needle) != std::string::npos, msg.substr(0, 300));
    CHECK(msg.size() < path.string().size() + 300);
  };
  // std::stoi read each of these as 2 (or 0).
  expect({{"num_labels", "2abc"}}, "'num_labels' is \"2abc\", not an integer");
  expect({{"num_labels", " 2"}}, "'num_labels'");
  expect({{"num_labels", "+2"}}, "'num_labels'");
  expect({{"num_labels", "2.0"}}, "'num_labels'");
  expect({{"num_labels", ""}}, "'num_labels'");
  expect({{"num_labels", "99999999999"}}, "'num_labels'");
  expect({{"first_trainable_layer", "0x"}}, "'first_trainable_layer'");
  expect({{"labels", std::string(150'000, '[') + std::string(150'000, ']')}},
         "patch metadata 'labels': JSON nested deeper than 64 levels");
  expect({{"labels", "[\"a\", [\"b\"]]"}}, "'labels' must be a JSON array of strings");
  expect({{"labels", "{\"a\": 1"}}, "patch metadata 'labels': not valid JSON");
  write_raw_patch(path, {{"first_trainable_layer", "1"}}, {});
  task_head<float> head;
  CHECK(apply_patch(path, p, head, sha).first_trainable_layer == 1);
}

TEST_CASE("patch: the head's kind and tag column travel with it (token heads for tagging); old patches are sequence heads") {
  temp_dir dir;
  auto p = numbered_params(0.0f);
  std::vector<const param_entry*> none;
  auto head = task_head<float>::init(2, 8, 5);
  head.per_token = true;
  const auto tagger = dir / "tagger.safetensors";
  auto info = rte_info();
  info.tagset = "XPOS";
  save_patch(tagger, p, none, head, info);
  task_head<float> got;
  const auto read = apply_patch(tagger, p, got, sha);
  CHECK(read.per_token);
  CHECK(read.tagset == "XPOS");
  CHECK(got.per_token);
  // No "head" key (every patch before token heads), and an explicit sequence head.
  const auto old = dir / "old.safetensors";
  write_raw_patch(old, {}, {});
  got.per_token = true;
  const auto old_info = apply_patch(old, p, got, sha);
  CHECK_FALSE(old_info.per_token);
  CHECK(old_info.tagset.empty());  // sequence patches name no tag column
  CHECK_FALSE(got.per_token);
  write_raw_patch(old, {{"head", "sequence"}}, {});
  CHECK_FALSE(apply_patch(old, p, got, sha).per_token);
  write_raw_patch(old, {{"head", "tokens"}}, {});
  CHECK(error_of(old, p).find("unknown head kind 'tokens'") != std::string::npos);
}

TEST_CASE("patch: applying is all or nothing: a bad tensor anywhere leaves backbone and head untouched") {
  temp_dir dir;
  const auto before = numbered_params(1.0f);
  const auto& layout = before.layout;
  // Two good bias tensors, then one of the wrong shape; or a good one, then a weight in a bias
  // patch; or good tensors and a head of the wrong shape. Tensors are read in name order, so
  // the bad one comes after at least one good one.
  const param_entry* b0 = layout.lookup("encoder.layer.0.attention.output.dense.bias");
  const param_entry* b1 = layout.lookup("encoder.layer.1.output.dense.bias");
  REQUIRE(b0 != nullptr);
  REQUIRE(b1 != nullptr);
  const std::vector<float> good(std::size_t(b0->numel), 7.0f), short_one(std::size_t(b1->numel) - 1, 7.0f);
  const std::vector<float> W(16, 3.0f), b(2, 3.0f), W_bad(24, 3.0f);
  struct bad_case {
    const char* what;
    std::vector<tensor_to_write> tensors;
    bool with_head;
    const char* needle;
  };
  const std::vector<bad_case> cases = {
      {"a later bias of the wrong shape", {{b0->name, b0->shape, good}, {b1->name, {std::int64_t(b1->numel) - 1}, short_one}}, true,
       "has shape"},
      {"a head of the wrong shape",
       {{b0->name, b0->shape, good}, {"classifier.weight", {3, 8}, W_bad}, {"classifier.bias", {2}, b}}, false,
       "classifier.weight"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    const auto path = dir / "bad.safetensors";
    write_raw_patch(path, {}, c.tensors, c.with_head);
    auto p = before;
    task_head<float> head(2, 8);
    head.W.assign(16, -1.0f), head.b.assign(2, -1.0f);
    std::string err;
    try {
      apply_patch(path, p, head, sha);
    } catch (const error& e) {
      err = e.what();
    }
    CHECK(err.find(c.needle) != std::string::npos);
    CHECK(std::equal(p.data.begin(), p.data.end(), before.data.begin()));
    CHECK(head.W == std::vector<float>(16, -1.0f));
    CHECK(head.b == std::vector<float>(2, -1.0f));
  }
}
