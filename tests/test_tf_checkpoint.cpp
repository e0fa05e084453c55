#include "test_support.hpp"

#include <bitfit/io/tf_checkpoint.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using bitfit::tf_dtype;
using bitfit::test::error_of;
using bitfit::test::temp_dir;

namespace {

fs::path fixtures() { return bitfit::test::golden_dir() / "tf_checkpoint"; }

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

/// Opening `prefix` must throw a bitfit::error whose message names `file` and contains every needle.
void expect_open_error(const fs::path& prefix, const fs::path& file, std::initializer_list<std::string> needles) {
  const std::string msg = error_of([&] { bitfit::tf_checkpoint ck(prefix); });
  CHECK_MESSAGE(contains(msg, file.string()), msg);
  for (const auto& n : needles) CHECK_MESSAGE(contains(msg, n), "expected '" << n << "' in: " << msg);
}

/// Copies the fixture bundle `name` ("single/ckpt") into `dir`; returns the new prefix.
fs::path copy_fixture(const temp_dir& dir, const std::string& name) {
  const fs::path src = fixtures() / name;
  for (const auto& f : fs::directory_iterator(src.parent_path()))
    if (f.path().filename().string().starts_with(src.filename().string()))
      fs::copy_file(f.path(), dir / f.path().filename().string());
  return dir / src.filename().string();
}

// ---- encoders for hand-made bundles (protobuf wire format and LevelDB tables) ----

void put_varint(std::string& out, std::uint64_t v) {
  for (; v >= 0x80; v >>= 7) out += char(v | 0x80);
  out += char(v);
}
void put_fixed32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out += char((v >> (8 * i)) & 0xFF);
}
void put_fixed64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out += char((v >> (8 * i)) & 0xFF);
}
std::string varint_field(std::uint32_t field, std::uint64_t v) {
  std::string out;
  put_varint(out, std::uint64_t(field) << 3);
  put_varint(out, v);
  return out;
}
std::string bytes_field(std::uint32_t field, const std::string& bytes) {
  std::string out;
  put_varint(out, std::uint64_t(field) << 3 | 2);
  put_varint(out, bytes.size());
  return out + bytes;
}
std::string fixed32_field(std::uint32_t field, std::uint32_t v) {
  std::string out;
  put_varint(out, std::uint64_t(field) << 3 | 5);
  put_fixed32(out, v);
  return out;
}

std::uint32_t masked_crc(const std::string& bytes) {
  return bitfit::detail::crc32c_mask(bitfit::detail::crc32c_extend(0, bytes.data(), bytes.size()));
}

std::string shape_proto(const std::vector<std::int64_t>& dims) {
  std::string shape;
  for (auto d : dims) shape += bytes_field(2, varint_field(1, std::uint64_t(d)));
  return shape;
}

/// A BundleEntryProto for `data` at `offset` of shard `shard`.
std::string entry_proto(tf_dtype dtype, const std::vector<std::int64_t>& dims, const std::string& data,
                        std::uint64_t offset = 0, std::uint32_t shard = 0) {
  return varint_field(1, std::uint64_t(dtype)) + bytes_field(2, shape_proto(dims)) + varint_field(3, shard) +
         varint_field(4, offset) + varint_field(5, data.size()) + fixed32_field(6, masked_crc(data));
}
/// The same for a DT_STRING tensor, whose crc TensorFlow computes over the lengths as fixed32.
std::string string_entry_proto(const std::vector<std::int64_t>& dims, const std::string& data, std::uint32_t crc) {
  return varint_field(1, std::uint64_t(tf_dtype::dt_string)) + bytes_field(2, shape_proto(dims)) +
         varint_field(5, data.size()) + fixed32_field(6, crc);
}

std::string header_proto(std::uint32_t num_shards = 1) {
  return varint_field(1, num_shards) + bytes_field(3, varint_field(1, 1));
}

std::string floats(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) put_fixed32(out, std::bit_cast<std::uint32_t>(v));
  return out;
}

using entries = std::vector<std::pair<std::string, std::string>>;

/// A block whose every entry is a restart point (no shared prefixes).
std::string block_of(const entries& kv) {
  std::string out;
  std::vector<std::uint32_t> restarts;
  for (const auto& [k, v] : kv) {
    restarts.push_back(std::uint32_t(out.size()));
    put_varint(out, 0);
    put_varint(out, k.size());
    put_varint(out, v.size());
    out += k + v;
  }
  if (restarts.empty()) restarts.push_back(0);
  for (auto r : restarts) put_fixed32(out, r);
  put_fixed32(out, std::uint32_t(restarts.size()));
  return out;
}

/// A LevelDB table of raw data blocks, each indexed under its separator key.
std::string table_of(const std::vector<std::string>& blocks, const std::vector<std::string>& separators,
                     std::uint8_t compression = 0) {
  std::string file;
  auto append_block = [&](const std::string& block) {
    std::string handle;
    put_varint(handle, file.size());
    put_varint(handle, block.size());
    file += block;
    const std::string type(1, char(compression));
    put_fixed32(file, bitfit::detail::crc32c_mask(bitfit::detail::crc32c_extend(
                          bitfit::detail::crc32c_extend(0, block.data(), block.size()), type.data(), 1)));
    file.insert(file.size() - 4, type);
    return handle;
  };
  entries index;
  for (std::size_t i = 0; i < blocks.size(); ++i) index.emplace_back(separators[i], append_block(blocks[i]));
  std::string footer = append_block(block_of({}));  // metaindex
  footer += append_block(block_of(index));
  footer.resize(40, '\0');
  put_fixed64(footer, bitfit::detail::sstable_magic);
  return file + footer;
}

/// Writes `<dir>/ckpt.index` holding `kv` (one data block, separator = largest key) and the shard
/// data files; returns the prefix.
fs::path write_bundle(const temp_dir& dir, const entries& kv, const std::vector<std::string>& shards = {""}) {
  const fs::path prefix = dir / "ckpt";
  std::string separator;
  for (const auto& [k, v] : kv) separator = std::max(separator, k);
  write_bytes(prefix.string() + ".index", table_of({block_of(kv)}, {separator}));
  for (std::size_t s = 0; s < shards.size(); ++s)
    write_bytes(bitfit::detail::tf_shard_path(prefix, std::uint32_t(s), std::uint32_t(shards.size())), shards[s]);
  return prefix;
}

/// The expected dtype/shape/values of every tensor of a fixture bundle, from expected.json.
nlohmann::json expected(const std::string& bundle) {
  std::ifstream in(fixtures() / "expected.json");
  return nlohmann::json::parse(in).at(bundle);
}

/// Checks names, dtypes, shapes and (DT_FLOAT) values of a fixture bundle against expected.json.
void check_fixture(const std::string& bundle) {
  const bitfit::tf_checkpoint ck(fixtures() / bundle);
  const nlohmann::json want = expected(bundle);
  std::vector<std::string> want_names;
  for (const auto& [name, t] : want.items()) want_names.push_back(name);
  CHECK(ck.names() == want_names);
  for (const auto& [name, t] : want.items()) {
    CAPTURE(name);
    const bitfit::tf_tensor_info& info = ck.info(name);
    CHECK(bitfit::tf_dtype_name(info.dtype) == t.at("dtype").get<std::string>());
    const auto shape = t.at("shape").get<std::vector<std::int64_t>>();
    CHECK(info.shape == shape);
    if (info.dtype != tf_dtype::dt_float) continue;
    const auto values = t.at("values").get<std::vector<float>>();
    const auto got = ck.f32(name, shape);
    CHECK(std::vector<float>(got.begin(), got.end()) == values);
  }
}

}  // namespace

TEST_CASE("crc32c matches the standard check values, in hardware and in the table fallback") {
  const std::string digits = "123456789";
  CHECK(bitfit::detail::crc32c_extend(0, digits.data(), digits.size()) == 0xE3069283u);
  CHECK(bitfit::detail::crc32c_extend_portable(0, digits.data(), digits.size()) == 0xE3069283u);
  const std::string zeros(32, '\0');
  CHECK(bitfit::detail::crc32c_extend(0, zeros.data(), zeros.size()) == 0x8A9136AAu);
  CHECK(bitfit::detail::crc32c_mask(0) == 0xa282ead8u);

  std::mt19937 rng(7);
  std::string bytes(1000, '\0');
  for (auto& c : bytes) c = char(rng());
  for (std::size_t start : {0, 1, 3, 7}) {
    for (std::size_t n : {0, 1, 7, 8, 9, 63, 500, 993}) {
      const auto whole = bitfit::detail::crc32c_extend(0, bytes.data() + start, n);
      CHECK(whole == bitfit::detail::crc32c_extend_portable(0, bytes.data() + start, n));
      const auto split = bitfit::detail::crc32c_extend(bitfit::detail::crc32c_extend(0, bytes.data() + start, n / 2),
                                                       bytes.data() + start + n / 2, n - n / 2);
      CHECK(whole == split);
    }
  }
}

TEST_CASE("dtype names follow TensorFlow's DataType enum") {
  CHECK(bitfit::tf_dtype_name(tf_dtype::dt_float) == "DT_FLOAT");
  CHECK(bitfit::tf_dtype_name(tf_dtype::dt_int64) == "DT_INT64");
  CHECK(bitfit::tf_dtype_name(tf_dtype::dt_uint64) == "DT_UINT64");
  CHECK(bitfit::tf_dtype_name(tf_dtype(0)) == "DT_INVALID");
  CHECK(bitfit::tf_dtype_name(tf_dtype(99)) == "DataType 99");
}

TEST_CASE("a single-shard tf.raw_ops.SaveV2 bundle reads as TensorFlow reads it") {
  check_fixture("single/ckpt");
  const bitfit::tf_checkpoint ck(fixtures() / "single/ckpt");
  CHECK(ck.num_shards() == 1);
  CHECK(ck.f32("scale", {})[0] == 0.5f);
  CHECK(ck.f32("empty", {0, 3}).empty());
  CHECK(ck.find("no/such/tensor") == nullptr);
  CHECK(ck.info("global_step").dtype == tf_dtype::dt_int64);
  CHECK(ck.info("vocab").dtype == tf_dtype::dt_string);
}

TEST_CASE("a two-shard bundle merged by MergeV2Checkpoints reads from both data files") {
  check_fixture("sharded/ckpt");
  const bitfit::tf_checkpoint ck(fixtures() / "sharded/ckpt");
  CHECK(ck.num_shards() == 2);
  CHECK(ck.info("encoder/weight").shard != ck.info("head/weight").shard);
}

TEST_CASE("a tf.train.Checkpoint bundle, with its object-graph string tensor, reads") {
  check_fixture("object/ckpt-1");
}

TEST_CASE("f32 names the checkpoint and tensor for a missing tensor, a wrong dtype or a wrong shape") {
  const fs::path prefix = fixtures() / "single/ckpt";
  const bitfit::tf_checkpoint ck(prefix);
  std::string msg = error_of([&] { ck.f32("global_step", {}); });
  CHECK_MESSAGE(contains(msg, prefix.string() + ": tensor 'global_step' has dtype DT_INT64, only DT_FLOAT is supported"), msg);
  msg = error_of([&] { ck.f32("vocab", {2}); });
  CHECK_MESSAGE(contains(msg, "'vocab' has dtype DT_STRING"), msg);
  msg = error_of([&] { ck.f32("dense/kernel", {4, 3}); });
  CHECK_MESSAGE(contains(msg, "'dense/kernel' has shape [3, 4] but [4, 3] was expected"), msg);
  msg = error_of([&] { ck.info("nope"); });
  CHECK_MESSAGE(contains(msg, prefix.string() + ": tensor 'nope' not found"), msg);
}

TEST_CASE("misaligned DT_FLOAT data is copied once and cached") {
  temp_dir dir;
  const std::string data = "x" + floats({1.5f, -2.0f, 3.25f});
  const auto prefix = write_bundle(dir, {{"", header_proto()}, {"w", entry_proto(tf_dtype::dt_float, {3}, data.substr(1), 1)}},
                                   {data});
  const bitfit::tf_checkpoint ck(prefix);
  const auto a = ck.f32("w", {3});
  CHECK(std::vector<float>(a.begin(), a.end()) == std::vector<float>{1.5f, -2.0f, 3.25f});
  CHECK(ck.f32("w", {3}).data() == a.data());
}

TEST_CASE("corrupt checkpoints are rejected naming the file, the tensor and the problem") {
  temp_dir dir;
  const std::string w = floats({1, 2, 3, 4});
  const std::string header = header_proto();
  const std::string good_entry = entry_proto(tf_dtype::dt_float, {2, 2}, w);
  const auto index_of = [](const fs::path& prefix) { return fs::path(prefix.string() + ".index"); };
  const auto data_of = [](const fs::path& prefix) { return fs::path(prefix.string() + ".data-00000-of-00001"); };

  SUBCASE("missing index or shard file") {
    expect_open_error(dir / "none", dir / "none.index", {"cannot open"});
    const auto prefix = copy_fixture(dir, "sharded/ckpt");
    fs::remove(prefix.string() + ".data-00001-of-00002");
    expect_open_error(prefix, prefix.string() + ".data-00001-of-00002", {"cannot open"});
  }
  SUBCASE("truncated index") {
    const auto prefix = copy_fixture(dir, "single/ckpt");
    const std::string bytes = read_bytes(index_of(prefix));
    write_bytes(index_of(prefix), bytes.substr(0, 40));
    expect_open_error(prefix, index_of(prefix), {"too short for a table footer"});
    write_bytes(index_of(prefix), bytes.substr(0, 100) + bytes.substr(bytes.size() - 48));
    expect_open_error(prefix, index_of(prefix), {"lies outside the file"});
  }
  SUBCASE("bad magic") {
    const auto prefix = copy_fixture(dir, "single/ckpt");
    std::string bytes = read_bytes(index_of(prefix));
    bytes.back() ^= 1;
    write_bytes(index_of(prefix), bytes);
    expect_open_error(prefix, index_of(prefix), {"bad magic number"});
  }
  SUBCASE("flipped index byte: block checksum") {
    const auto prefix = copy_fixture(dir, "single/ckpt");
    std::string bytes = read_bytes(index_of(prefix));
    bytes[20] ^= 0x20;
    write_bytes(index_of(prefix), bytes);
    expect_open_error(prefix, index_of(prefix), {"data block at offset 0", "checksum mismatch"});
  }
  SUBCASE("compressed block") {
    const auto prefix = dir / "ckpt";
    write_bytes(index_of(prefix), table_of({block_of({{"", header}})}, {""}, 1));
    expect_open_error(prefix, index_of(prefix), {"compression type 1 is not supported"});
  }
  SUBCASE("block handle outside the file") {
    const auto prefix = dir / "ckpt";
    const std::string file = table_of({block_of({{"", header}})}, {""});
    bitfit::detail::byte_reader handles(std::string_view(file).substr(file.size() - 48), "footer");
    const auto metaindex = bitfit::detail::read_block_handle(handles);
    std::string footer;
    put_varint(footer, metaindex.offset), put_varint(footer, metaindex.size);
    put_varint(footer, 1000), put_varint(footer, 10);  // index block past the end
    footer.resize(40, '\0');
    put_fixed64(footer, bitfit::detail::sstable_magic);
    write_bytes(index_of(prefix), file.substr(0, file.size() - 48) + footer);
    expect_open_error(prefix, index_of(prefix), {"index block at offset 1000 size 10: lies outside the file"});
  }
  SUBCASE("restart array out of range, or not at an entry") {
    const auto prefix = dir / "ckpt";
    std::string block = block_of({{"", header}});
    block.replace(block.size() - 4, 4, "\xff\x00\x00\x00", 4);  // 255 restarts in a tiny block
    write_bytes(index_of(prefix), table_of({block}, {""}));
    expect_open_error(prefix, index_of(prefix), {"restart count 255 does not fit the block"});
    block = block_of({{"", header}, {"w", good_entry}});
    block.replace(block.size() - 8, 4, "\x03\x00\x00\x00", 4);  // second restart inside the first entry
    write_bytes(index_of(prefix), table_of({block}, {"w"}));
    expect_open_error(prefix, index_of(prefix), {"restart point 3 is not at an entry"});
  }
  SUBCASE("keys not sorted, duplicate key, key past its separator, no header") {
    const auto e = entry_proto(tf_dtype::dt_float, {}, floats({1}));
    auto prefix = write_bundle(dir, {{"", header}, {"b", e}, {"a", e}}, {floats({1})});
    expect_open_error(prefix, index_of(prefix), {"keys not sorted: 'a' after 'b'"});
    prefix = write_bundle(dir, {{"", header}, {"a", e}, {"a", e}}, {floats({1})});
    expect_open_error(prefix, index_of(prefix), {"duplicate key 'a'"});
    write_bytes(index_of(prefix), table_of({block_of({{"", header}, {"b", e}})}, {"a"}));
    expect_open_error(prefix, index_of(prefix), {"key 'b' is past its index separator 'a'"});
    prefix = write_bundle(dir, {{"a", e}}, {floats({1})});
    expect_open_error(prefix, index_of(prefix), {"no bundle header"});
  }
  SUBCASE("bad varints and wire types in an entry name the tensor") {
    auto prefix = write_bundle(dir, {{"", header}, {"w", "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"}});
    expect_open_error(prefix, index_of(prefix), {"tensor 'w'", "varint longer than 10 bytes or overflowing 64 bits"});
    prefix = write_bundle(dir, {{"", header}, {"w", "\x08\x81"}});
    expect_open_error(prefix, index_of(prefix), {"tensor 'w'", "truncated varint"});
    prefix = write_bundle(dir, {{"", header}, {"w", good_entry + "\x1b"}});  // field 3, wire type 3
    expect_open_error(prefix, index_of(prefix), {"tensor 'w'", "groups (wire type 3)"});
    prefix = write_bundle(dir, {{"", header}, {"w", good_entry + "\x12\x7f"}});  // shape, 127 bytes announced
    expect_open_error(prefix, index_of(prefix), {"tensor 'w'", "length 127 runs past the end"});
    prefix = write_bundle(dir, {{"", header}, {"w", good_entry + std::string("\x0a\x00", 2)}});  // dtype as bytes
    expect_open_error(prefix, index_of(prefix), {"tensor 'w'", "dtype (field 1) has wire type 2"});
  }
  SUBCASE("unknown fields of every wire type are skipped") {
    const std::string unknown = varint_field(99, 5) + bytes_field(98, "xyz") + fixed32_field(97, 1) + "\xc1\x06" +
                                std::string(8, '\x01');  // field 104, fixed64
    const auto prefix = write_bundle(dir, {{"", header + unknown}, {"w", unknown + good_entry + unknown}}, {w});
    CHECK(bitfit::tf_checkpoint(prefix).f32("w", {2, 2})[3] == 4.0f);
  }
  SUBCASE("shape and size disagree, negative or unknown dims") {
    auto prefix = write_bundle(dir, {{"", header}, {"w", entry_proto(tf_dtype::dt_float, {3}, w)}}, {w});
    expect_open_error(prefix, index_of(prefix), {"tensor 'w'", "shape [3] of DT_FLOAT needs 12 bytes but the entry's size is 16"});
    prefix = write_bundle(dir, {{"", header}, {"w", entry_proto(tf_dtype::dt_float, {-4}, w)}}, {w});
    expect_open_error(prefix, index_of(prefix), {"tensor 'w'", "shape dimension is negative (-4)"});
    prefix = write_bundle(dir, {{"", header}, {"w", good_entry + bytes_field(2, varint_field(3, 1))}}, {w});
    expect_open_error(prefix, index_of(prefix), {"tensor 'w'", "unknown rank"});
    prefix = write_bundle(dir, {{"", header}, {"w", entry_proto(tf_dtype::dt_float, {1ll << 40, 1ll << 40}, w)}}, {w});
    expect_open_error(prefix, index_of(prefix), {"tensor 'w'", "too many"});
  }
  SUBCASE("unsupported dtypes and sliced entries") {
    auto prefix = write_bundle(dir, {{"", header}, {"w", entry_proto(tf_dtype::dt_variant, {}, "")}});
    expect_open_error(prefix, index_of(prefix), {"tensor 'w'", "dtype DT_VARIANT is not supported"});
    prefix = write_bundle(dir, {{"", header}, {"w", good_entry + bytes_field(7, "")}}, {w});
    expect_open_error(prefix, index_of(prefix), {"tensor 'w'", "partitioned into slices"});
  }
  SUBCASE("shard_id beyond num_shards") {
    const auto prefix = write_bundle(dir, {{"", header}, {"w", entry_proto(tf_dtype::dt_float, {2, 2}, w, 0, 1)}}, {w});
    expect_open_error(prefix, index_of(prefix), {"tensor 'w'", "shard_id 1 is not below num_shards 1"});
  }
  SUBCASE("unsupported header: endianness, version, num_shards") {
    auto prefix = write_bundle(dir, {{"", header + varint_field(2, 1)}});
    expect_open_error(prefix, index_of(prefix), {"bundle header", "big-endian"});
    prefix = write_bundle(dir, {{"", header + bytes_field(3, varint_field(2, 2))}});
    expect_open_error(prefix, index_of(prefix), {"bundle header", "needs a reader of bundle version 2"});
    prefix = write_bundle(dir, {{"", header + bytes_field(3, bytes_field(3, std::string("\x00\x01", 2)))}});  // packed bad_consumers
    expect_open_error(prefix, index_of(prefix), {"bundle header", "excludes readers of bundle version 1"});
    prefix = write_bundle(dir, {{"", varint_field(1, 0)}});
    expect_open_error(prefix, index_of(prefix), {"bundle header", "num_shards is 0"});
  }
  SUBCASE("tensor bytes outside the data file") {
    const auto prefix = copy_fixture(dir, "single/ckpt");
    const std::string data = read_bytes(data_of(prefix));
    write_bytes(data_of(prefix), data.substr(0, data.size() - 10));
    expect_open_error(prefix, data_of(prefix), {"tensor 'vocab'", "lie outside the data file"});
  }
  SUBCASE("a flipped data byte is a crc error naming the tensor") {
    const auto prefix = copy_fixture(dir, "single/ckpt");
    std::string data = read_bytes(data_of(prefix));
    const auto kernel = bitfit::tf_checkpoint(fixtures() / "single/ckpt").info("dense/kernel");
    data[std::size_t(kernel.offset) + 5] ^= 0x10;
    write_bytes(data_of(prefix), data);
    expect_open_error(prefix, data_of(prefix), {"tensor 'dense/kernel'", "crc32c mismatch"});
  }
  SUBCASE("string tensors: lengths that do not add up, or a bad length checksum") {
    std::string strings;
    put_varint(strings, 2);
    put_varint(strings, 3);
    std::string crc_input;
    put_fixed32(crc_input, 2), put_fixed32(crc_input, 3);
    put_fixed32(strings, masked_crc(crc_input));
    const std::string good = strings + "hixyz";
    const std::uint32_t crc = masked_crc(crc_input + strings.substr(2) + "hixyz");
    auto prefix = write_bundle(dir, {{"", header}, {"s", string_entry_proto({2}, good, crc)}}, {good});
    CHECK(bitfit::tf_checkpoint(prefix).info("s").size == good.size());
    const std::string long_tail = good + "!";
    prefix = write_bundle(dir, {{"", header}, {"s", string_entry_proto({2}, long_tail, crc)}}, {long_tail});
    expect_open_error(prefix, data_of(prefix), {"tensor 's'", "add up to 5 bytes but 6 follow"});
    std::string bad_crc = good;
    bad_crc[2] ^= 1;
    prefix = write_bundle(dir, {{"", header}, {"s", string_entry_proto({2}, bad_crc, crc)}}, {bad_crc});
    expect_open_error(prefix, data_of(prefix), {"tensor 's'", "checksum of the string lengths"});
  }
}
