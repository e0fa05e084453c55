#include "test_support.hpp"

#include <bitfit/io/safetensors.hpp>

#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using bitfit::dtype;
using bitfit::test::error_of;
using bitfit::test::temp_dir;

namespace {


void append_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out += char((v >> (8 * i)) & 0xFF);
}

template <class T>
void append_le(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);  // the test host is little-endian, like the format
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

/// A safetensors file from a header text and a data section, as-is (no validation, no padding).
fs::path raw_file(const temp_dir& dir, const std::string& name, const std::string& header, const std::string& data) {
  std::string bytes;
  append_u64(bytes, header.size());
  bytes += header + data;
  const auto p = dir / name;
  write_bytes(p, bytes);
  return p;
}

/// Opening `p` must throw a bitfit::error whose message names the file and contains `needle`.
void expect_open_error(const fs::path& p, const std::string& needle) {
  try {
    bitfit::safetensors_file f(p);
    FAIL("expected an error mentioning '" << needle << "' for " << p);
  } catch (const bitfit::error& e) {
    const std::string msg = e.what();
    CHECK_MESSAGE(msg.find(p.string()) != std::string::npos, msg);
    CHECK_MESSAGE(msg.find(needle) != std::string::npos, msg);
  }
}


bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("dtype names follow the safetensors spelling") {
  CHECK(bitfit::dtype_name(dtype::f64) == "F64");
  CHECK(bitfit::dtype_name(dtype::f32) == "F32");
  CHECK(bitfit::dtype_name(dtype::f16) == "F16");
  CHECK(bitfit::dtype_name(dtype::bf16) == "BF16");
  CHECK(bitfit::dtype_name(dtype::i64) == "I64");
  CHECK(bitfit::dtype_name(dtype::i32) == "I32");
  CHECK(bitfit::dtype_name(dtype::i16) == "I16");
  CHECK(bitfit::dtype_name(dtype::i8) == "I8");
  CHECK(bitfit::dtype_name(dtype::u8) == "U8");
  CHECK(bitfit::dtype_name(dtype::boolean) == "BOOL");
}

TEST_CASE("write then read F32 tensors round-trips values, shapes, order and metadata") {
  temp_dir dir;
  const std::vector<float> a = {1.5f, -2.25f, 0.0f, -0.0f, std::numeric_limits<float>::denorm_min(), 3.4e38f};
  const std::vector<float> b = {42.0f};
  const std::vector<float> c;
  const std::vector<bitfit::tensor_to_write> ts = {
      {"zeta.weight", {2, 3}, a}, {"alpha.scalar", {}, b}, {"empty", {0, 4}, c}};
  const auto p = dir / "round.safetensors";
  bitfit::write_safetensors(p, ts, {{"format", "pt"}, {"note", "\"quoted\" and unicode \xC3\xA9"}});

  bitfit::safetensors_file f(p);
  CHECK(f.path() == p);
  CHECK(f.names() == std::vector<std::string>{"zeta.weight", "alpha.scalar", "empty"});
  const auto& ia = f.info("zeta.weight");
  CHECK(ia.type == dtype::f32);
  CHECK(ia.shape == std::vector<std::int64_t>{2, 3});
  CHECK(ia.numel() == 6);
  CHECK(ia.end - ia.begin == 24);
  CHECK(f.info("alpha.scalar").shape.empty());
  CHECK(f.info("alpha.scalar").numel() == 1);
  CHECK(f.info("empty").numel() == 0);

  const auto va = f.f32("zeta.weight", {2, 3});
  REQUIRE(va.size() == a.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(std::bit_cast<std::uint32_t>(va[i]) == std::bit_cast<std::uint32_t>(a[i]));
  CHECK(f.f32("alpha.scalar", {})[0] == 42.0f);
  CHECK(f.f32("empty", {0, 4}).empty());
  // Aligned F32 is served straight from the mapping.
  CHECK(static_cast<const void*>(va.data()) == static_cast<const void*>(f.bytes("zeta.weight").data()));

  CHECK(f.metadata().is_object());
  CHECK(f.metadata().size() == 2);
  CHECK(f.metadata()["format"] == "pt");
  CHECK(f.metadata()["note"] == "\"quoted\" and unicode \xC3\xA9");

  // The writer pads the header with spaces so the data section starts 8-byte aligned.
  std::ifstream in(p, std::ios::binary);
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= std::uint64_t(len[i]) << (8 * i);
  CHECK((8 + n) % 8 == 0);
  CHECK(fs::file_size(p) == 8 + n + 4 * (6 + 1));
}

TEST_CASE("a file without metadata has an empty metadata object") {
  temp_dir dir;
  const std::vector<float> x = {1, 2};
  const std::vector<bitfit::tensor_to_write> ts = {{"x", {2}, x}};
  bitfit::write_safetensors(dir / "m.safetensors", ts);
  bitfit::safetensors_file f(dir / "m.safetensors");
  CHECK(f.metadata().is_object());
  CHECK(f.metadata().empty());
}

TEST_CASE("writing is atomic: no temporary file remains, and open readers keep the old contents") {
  temp_dir dir;
  const auto p = dir / "w.safetensors";
  const std::vector<float> v1 = {1, 2, 3}, v2 = {7, 8, 9};
  bitfit::write_safetensors(p, std::vector<bitfit::tensor_to_write>{{"t", {3}, v1}});
  bitfit::safetensors_file old(p);
  bitfit::write_safetensors(p, std::vector<bitfit::tensor_to_write>{{"t", {3}, v2}});

  std::vector<fs::path> entries(fs::directory_iterator(dir.path), fs::directory_iterator{});
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].filename() == "w.safetensors");
  // rename() replaced the directory entry; the old mapping still sees the old inode.
  CHECK(old.f32("t", {3})[0] == 1.0f);
  CHECK(bitfit::safetensors_file(p).f32("t", {3})[0] == 7.0f);
}

TEST_CASE("write errors name the path or the tensor") {
  temp_dir dir;
  const std::vector<float> x = {1, 2, 3};
  const auto missing = dir / "no" / "such" / "dir" / "x.safetensors";
  auto msg = error_of([&] { bitfit::write_safetensors(missing, std::vector<bitfit::tensor_to_write>{{"x", {3}, x}}); });
  CHECK_MESSAGE(contains(msg, missing.string()), msg);
  CHECK_MESSAGE(contains(msg, "cannot write"), msg);

  const auto p = dir / "bad.safetensors";
  msg = error_of([&] { bitfit::write_safetensors(p, std::vector<bitfit::tensor_to_write>{{"x", {2, 2}, x}}); });
  CHECK_MESSAGE((contains(msg, p.string()) && contains(msg, "'x'") && contains(msg, "4 elements")), msg);
  msg = error_of([&] { bitfit::write_safetensors(p, std::vector<bitfit::tensor_to_write>{{"x", {3}, x}, {"x", {3}, x}}); });
  CHECK_MESSAGE((contains(msg, "'x'") && contains(msg, "twice")), msg);
  msg = error_of([&] { bitfit::write_safetensors(p, std::vector<bitfit::tensor_to_write>{{"__metadata__", {3}, x}}); });
  CHECK_MESSAGE(contains(msg, "invalid tensor name"), msg);
  msg = error_of([&] { bitfit::write_safetensors(p, std::vector<bitfit::tensor_to_write>{{"x", {-1, -3}, x}}); });
  CHECK_MESSAGE(contains(msg, "negative"), msg);
  CHECK_FALSE(fs::exists(p));
  CHECK(fs::is_empty(dir.path));
}

TEST_CASE("names are found with or without a \"bert.\" prefix") {
  temp_dir dir;
  const std::vector<float> x = {1, 2}, y = {3}, z = {4}, w = {5};
  const std::vector<bitfit::tensor_to_write> ts = {{"bert.encoder.layer.0.output.dense.bias", {2}, x},
                                                   {"classifier.bias", {1}, y},
                                                   {"both", {1}, z},
                                                   {"bert.both", {1}, w}};
  const auto p = dir / "prefixed.safetensors";
  bitfit::write_safetensors(p, ts);
  bitfit::safetensors_file f(p);
  CHECK(f.names() == std::vector<std::string>{"bert.encoder.layer.0.output.dense.bias", "classifier.bias", "both", "bert.both"});
  CHECK(f.contains("encoder.layer.0.output.dense.bias"));
  CHECK(f.contains("bert.encoder.layer.0.output.dense.bias"));
  CHECK(f.info("encoder.layer.0.output.dense.bias").name == "bert.encoder.layer.0.output.dense.bias");
  CHECK(f.f32("encoder.layer.0.output.dense.bias", {2})[1] == 2.0f);
  CHECK(f.contains("classifier.bias"));
  CHECK(f.contains("bert.classifier.bias"));
  CHECK(f.f32("bert.classifier.bias", {1})[0] == 3.0f);
  // An exact match wins over the prefixed / unprefixed alternative.
  CHECK(f.f32("both", {1})[0] == 4.0f);
  CHECK(f.f32("bert.both", {1})[0] == 5.0f);
  CHECK_FALSE(f.contains("encoder.layer.1.output.dense.bias"));
  CHECK_FALSE(f.contains("bert."));
  CHECK_FALSE(f.contains(""));
}

TEST_CASE("a missing tensor, a wrong expected shape or a non-float dtype throws naming the tensor") {
  temp_dir dir;
  const std::vector<float> x(6, 1.0f);
  const auto p = dir / "s.safetensors";
  bitfit::write_safetensors(p, std::vector<bitfit::tensor_to_write>{{"enc.w", {2, 3}, x}});
  bitfit::safetensors_file f(p);

  auto msg = error_of([&] { (void)f.info("enc.nope"); });
  CHECK_MESSAGE((contains(msg, p.string()) && contains(msg, "tensor 'enc.nope' not found")), msg);
  CHECK_THROWS_AS((void)f.f32("enc.nope", {2, 3}), bitfit::error);
  CHECK_THROWS_AS((void)f.bytes("enc.nope"), bitfit::error);

  msg = error_of([&] { (void)f.f32("enc.w", {3, 2}); });
  CHECK_MESSAGE((contains(msg, p.string()) && contains(msg, "'enc.w'") && contains(msg, "[2, 3]") && contains(msg, "[3, 2]")), msg);
  CHECK_THROWS_AS((void)f.f32("enc.w", {6}), bitfit::error);
  CHECK_THROWS_AS((void)f.f32("enc.w", {2, 3, 1}), bitfit::error);
  const std::vector<std::int64_t> shape = {2, 3};
  CHECK(f.f32("enc.w", std::span<const std::int64_t>(shape)).size() == 6);

  const std::string ints = R"({"ids":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})";
  std::string data;
  append_le<std::int32_t>(data, 7);
  append_le<std::int32_t>(data, -1);
  const auto pi = raw_file(dir, "ints.safetensors", ints, data);
  bitfit::safetensors_file fi(pi);
  msg = error_of([&] { (void)fi.f32("ids", {2}); });
  CHECK_MESSAGE((contains(msg, "'ids'") && contains(msg, "I32") && contains(msg, "not a floating-point")), msg);
  CHECK(fi.info("ids").type == dtype::i32);
  REQUIRE(fi.bytes("ids").size() == 8);
  std::int32_t second = 0;
  std::memcpy(&second, fi.bytes("ids").data() + 4, 4);
  CHECK(second == -1);
}

TEST_CASE("F16 converts exactly, including signed zero, subnormals, infinities and NaN") {
  temp_dir dir;
  const std::vector<std::uint16_t> h = {0x0000, 0x8000, 0x3C00, 0xC000, 0x3555, 0x7BFF, 0x0400,
                                        0x0001, 0x03FF, 0x8001, 0x7C00, 0xFC00, 0x7E00, 0x7C01};
  std::string data;
  for (auto v : h) append_le(data, v);
  const std::string header = R"({"h":{"dtype":"F16","shape":[2,7],"data_offsets":[0,28]}})";
  const auto p = raw_file(dir, "f16.safetensors", header, data);
  bitfit::safetensors_file f(p);
  CHECK(f.info("h").type == dtype::f16);
  const auto v = f.f32("h", {2, 7});
  REQUIRE(v.size() == 14);
  // Expected values: numpy, np.array(h, np.uint16).view(np.float16).astype(np.float32).
  CHECK(v[0] == 0.0f);
  CHECK_FALSE(std::signbit(v[0]));
  CHECK(v[1] == 0.0f);
  CHECK(std::signbit(v[1]));
  CHECK(v[2] == 1.0f);
  CHECK(v[3] == -2.0f);
  CHECK(v[4] == 0.333251953125f);
  CHECK(v[5] == 65504.0f);
  CHECK(v[6] == std::ldexp(1.0f, -14));           // smallest normal half
  CHECK(v[7] == std::ldexp(1.0f, -24));           // smallest subnormal half
  CHECK(v[8] == std::ldexp(1023.0f, -24));        // largest subnormal half
  CHECK(v[8] == 6.097555160522461e-05f);
  CHECK(v[9] == -std::ldexp(1.0f, -24));
  CHECK(v[10] == std::numeric_limits<float>::infinity());
  CHECK(v[11] == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(v[12]));
  CHECK(std::isnan(v[13]));  // a signalling-NaN pattern must not turn into infinity
  // Converted once: the same cached buffer comes back.
  CHECK(f.f32("h", {2, 7}).data() == v.data());
}

TEST_CASE("BF16 converts exactly, including subnormals, infinities and NaN") {
  temp_dir dir;
  const std::vector<std::uint16_t> b = {0x3F80, 0xC040, 0x3EAB, 0x7F7F, 0x0080, 0x0001, 0x807F, 0x7F80, 0xFF80, 0x7FC0};
  std::string data;
  for (auto v : b) append_le(data, v);
  const std::string header = R"({"b":{"dtype":"BF16","shape":[10],"data_offsets":[0,20]}})";
  bitfit::safetensors_file f(raw_file(dir, "bf16.safetensors", header, data));
  const auto v = f.f32("b", {10});
  // Expected values: numpy, (np.array(b, np.uint32) << 16).view(np.float32).
  CHECK(v[0] == 1.0f);
  CHECK(v[1] == -3.0f);
  CHECK(v[2] == 0.333984375f);
  CHECK(v[3] == 3.3895313892515355e+38f);
  CHECK(v[4] == std::numeric_limits<float>::min());
  CHECK(v[5] == std::ldexp(1.0f, -133));  // subnormal float
  CHECK(v[5] == 9.183549615799121e-41f);
  CHECK(v[6] == -std::ldexp(127.0f, -133));
  CHECK(v[7] == std::numeric_limits<float>::infinity());
  CHECK(v[8] == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(v[9]));
}

TEST_CASE("F64 converts with rounding to nearest and overflow to infinity") {
  temp_dir dir;
  const double fmax = std::numeric_limits<float>::max();
  const std::vector<double> d = {1.5, -0.1, 1e300, -1e300, 1e-50, fmax, fmax + 0x1p102, fmax + 0x1p103,
                                 0x1p-149, std::numeric_limits<double>::quiet_NaN()};
  std::string data;
  for (auto v : d) append_le(data, v);
  const std::string header = R"({"d":{"dtype":"F64","shape":[10],"data_offsets":[0,80]}})";
  bitfit::safetensors_file f(raw_file(dir, "f64.safetensors", header, data));
  const auto v = f.f32("d", {10});
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(v[0] == 1.5f);
  CHECK(v[1] == -0.1f);
  CHECK(v[2] == inf);
  CHECK(v[3] == -inf);
  CHECK(v[4] == 0.0f);
  CHECK(v[5] == std::numeric_limits<float>::max());
  CHECK(v[6] == std::numeric_limits<float>::max());  // below the halfway point: rounds down
  CHECK(v[7] == inf);                                // halfway: ties to even, i.e. to infinity
  CHECK(v[8] == std::numeric_limits<float>::denorm_min());
  CHECK(std::isnan(v[9]));
}

TEST_CASE("F32 data at a misaligned offset and a space-padded header still read correctly") {
  temp_dir dir;
  // Header padded so that the data section starts at an odd address (8 + header length = 1 mod 4).
  std::string header = R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  while ((8 + header.size()) % 4 != 1) header += ' ';
  std::string data;
  for (float v : {1.25f, -7.5f, 1e-3f}) append_le(data, v);
  bitfit::safetensors_file f(raw_file(dir, "odd.safetensors", header, data));
  const auto v = f.f32("x", {3});
  CHECK(reinterpret_cast<std::uintptr_t>(f.bytes("x").data()) % alignof(float) != 0);
  CHECK(reinterpret_cast<std::uintptr_t>(v.data()) % alignof(float) == 0);
  CHECK(v[0] == 1.25f);
  CHECK(v[1] == -7.5f);
  CHECK(v[2] == 1e-3f);

  // A tensor at an odd offset inside an aligned data section: 1 byte of U8 first.
  const std::string h2 = R"({"u":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"y":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}})";
  std::string padded = h2;
  while ((8 + padded.size()) % 8 != 0) padded += ' ';
  std::string d2(1, '\x05');
  append_le(d2, 2.5f);
  bitfit::safetensors_file g(raw_file(dir, "odd2.safetensors", padded, d2));
  CHECK(g.f32("y", {1})[0] == 2.5f);
  CHECK(std::to_integer<int>(g.bytes("u")[0]) == 5);
  CHECK(g.names() == std::vector<std::string>{"u", "y"});
}

TEST_CASE("corrupt files are rejected with the file and the problem named") {
  temp_dir dir;
  const auto tensor = [](const std::string& name, const std::string& dt, const std::string& shape, const std::string& offs) {
    return "\"" + name + "\":{\"dtype\":\"" + dt + "\",\"shape\":" + shape + ",\"data_offsets\":" + offs + "}";
  };
  const std::string eight(8, '\0');

  SUBCASE("missing file and directory") {
    expect_open_error(dir / "absent.safetensors", "cannot open");
    expect_open_error(dir.path, "not a regular file");
  }
  SUBCASE("empty file") {
    write_bytes(dir / "empty.safetensors", "");
    expect_open_error(dir / "empty.safetensors", "too short");
  }
  SUBCASE("truncated header length") {
    write_bytes(dir / "trunc.safetensors", std::string("\x10\x00\x00", 3));
    expect_open_error(dir / "trunc.safetensors", "too short");
  }
  SUBCASE("header length past the end of the file") {
    std::string bytes;
    append_u64(bytes, 1000);
    bytes += "{}";
    write_bytes(dir / "past.safetensors", bytes);
    expect_open_error(dir / "past.safetensors", "header length 1000 is larger than the rest of the file");
    bytes.clear();
    append_u64(bytes, ~std::uint64_t(0));
    write_bytes(dir / "huge.safetensors", bytes);
    expect_open_error(dir / "huge.safetensors", "larger than the rest of the file");
  }
  SUBCASE("absurd header length in a file that is big enough for it") {
    const auto p = dir / "absurd.safetensors";
    std::string bytes;
    append_u64(bytes, 200'000'000);
    write_bytes(p, bytes);
    fs::resize_file(p, 200'000'016);  // sparse: costs no disk space
    expect_open_error(p, "exceeds the limit");
  }
  SUBCASE("header that is not JSON, or not an object") {
    expect_open_error(raw_file(dir, "garbage.safetensors", "{\"a\": nope", ""), "not valid JSON");
    expect_open_error(raw_file(dir, "nul.safetensors", std::string("{}\0", 3), ""), "not valid JSON");
    expect_open_error(raw_file(dir, "array.safetensors", "[1, 2]", ""), "array, not an object");
    expect_open_error(raw_file(dir, "string.safetensors", "\"x\"", ""), "not an object");
    expect_open_error(raw_file(dir, "emptyheader.safetensors", "", ""), "not valid JSON");
  }
  SUBCASE("bad entries name the tensor") {
    expect_open_error(raw_file(dir, "e1.safetensors", "{\"t\": 3}", ""), "tensor 't': entry is a JSON number");
    expect_open_error(raw_file(dir, "e2.safetensors", "{" + tensor("t", "F8", "[2]", "[0,2]") + "}", eight),
                      "tensor 't': unknown dtype 'F8'");
    expect_open_error(raw_file(dir, "e3.safetensors", R"({"t":{"shape":[1],"data_offsets":[0,4]}})", eight),
                      "tensor 't': missing or non-string dtype");
    expect_open_error(raw_file(dir, "e4.safetensors", "{" + tensor("t", "F32", "[-1]", "[0,4]") + "}", eight),
                      "tensor 't': shape [-1] must be an array of non-negative integers");
    expect_open_error(raw_file(dir, "e5.safetensors", "{" + tensor("t", "F32", "[1.5]", "[0,4]") + "}", eight),
                      "tensor 't': shape [1.5] must be an array of non-negative integers");
    expect_open_error(raw_file(dir, "e6.safetensors", "{" + tensor("t", "F32", "\"2\"", "[0,4]") + "}", eight),
                      "tensor 't': missing shape");
    expect_open_error(raw_file(dir, "e7.safetensors", "{" + tensor("t", "F32", "[1]", "[0]") + "}", eight),
                      "tensor 't': data_offsets must be [begin, end]");
    expect_open_error(raw_file(dir, "e8.safetensors", "{" + tensor("t", "F32", "[1]", "[-4,0]") + "}", eight),
                      "tensor 't': data_offsets must be [begin, end]");
  }
  SUBCASE("byte span disagrees with shape x dtype") {
    expect_open_error(raw_file(dir, "span.safetensors", "{" + tensor("w", "F32", "[2]", "[0,4]") + "}", eight),
                      "tensor 'w': shape [2] of F32 needs 8 bytes but data_offsets span 4");
    expect_open_error(raw_file(dir, "span16.safetensors", "{" + tensor("w", "BF16", "[2,2]", "[0,4]") + "}", eight),
                      "needs 8 bytes");
  }
  SUBCASE("offsets past the end of the data section") {
    expect_open_error(raw_file(dir, "pastend.safetensors", "{" + tensor("w", "F32", "[4]", "[0,16]") + "}", eight),
                      "tensor 'w': data_offsets end 16 is past the end of the data section (8 bytes)");
  }
  SUBCASE("begin > end") {
    expect_open_error(raw_file(dir, "order.safetensors", "{" + tensor("w", "F32", "[1]", "[8,4]") + "}", eight),
                      "tensor 'w': data_offsets begin 8 > end 4");
  }
  SUBCASE("overlapping tensors") {
    const auto h = "{" + tensor("a", "F32", "[2]", "[0,8]") + "," + tensor("b", "F32", "[1]", "[4,8]") + "}";
    expect_open_error(raw_file(dir, "overlap.safetensors", h, eight), "tensors 'a' and 'b' overlap");
    const auto same = "{" + tensor("a", "F32", "[1]", "[0,4]") + "," + tensor("b", "F32", "[1]", "[0,4]") + "}";
    expect_open_error(raw_file(dir, "same.safetensors", same, eight), "overlap");
  }
  SUBCASE("element or byte count overflow") {
    expect_open_error(
        raw_file(dir, "numel.safetensors", "{" + tensor("w", "F32", "[4294967296,4294967296]", "[0,4]") + "}", eight),
        "tensor 'w': shape [4294967296, 4294967296] has too many elements (overflow)");
    expect_open_error(
        raw_file(dir, "bytes.safetensors", "{" + tensor("w", "F64", "[2305843009213693952]", "[0,4]") + "}", eight),
        "has too many bytes (overflow)");
    expect_open_error(
        raw_file(dir, "dim.safetensors", "{" + tensor("w", "F32", "[18446744073709551615]", "[0,4]") + "}", eight),
        "must be an array of non-negative integers");
  }
  SUBCASE("a product of dimensions that overflows int64 before a zero dimension") {
    // 2^62 * 2 fits in uint64 but not in int64: tensor_info::numel() would overflow (UB), although
    // the trailing 0 makes the tensor empty. Order must not matter.
    expect_open_error(raw_file(dir, "zero.safetensors", "{" + tensor("w", "F32", "[4611686018427387904,2,0]", "[0,0]") + "}", ""),
                      "tensor 'w': shape [4611686018427387904, 2, 0] has too many elements (overflow)");
    expect_open_error(raw_file(dir, "zero0.safetensors", "{" + tensor("w", "F32", "[0,4611686018427387904,2]", "[0,0]") + "}", ""),
                      "has too many elements (overflow)");
    bitfit::tensor_info t;
    t.name = "w";
    t.shape = {std::int64_t(1) << 62, 2, 0};
    CHECK_THROWS_AS((void)t.numel(), bitfit::error);
    t.shape = {3, -1};
    CHECK_THROWS_AS((void)t.numel(), bitfit::error);
    t.shape = {0, std::int64_t(1) << 62, 2};  // partial products 0, 0, 0
    CHECK(t.numel() == 0);
  }
  SUBCASE("a shape nested 150,000 deep (recursion in dump() overflowed the stack)") {
    const std::string deep = std::string(150'000, '[') + std::string(150'000, ']');
    expect_open_error(raw_file(dir, "deep.safetensors", "{" + tensor("w", "F32", deep, "[0,0]") + "}", ""),
                      "header: JSON nested deeper than 64 levels");
    expect_open_error(raw_file(dir, "deepmeta.safetensors", "{\"__metadata__\":{\"a\":" + deep + "}}", ""),
                      "header: JSON nested deeper than 64 levels");
    // A shape nested shallowly enough to parse is quoted in the message, but only so far.
    const std::string shallow = std::string(60, '[') + std::string(60, ']');
    const auto p = raw_file(dir, "shallow.safetensors", "{" + tensor("w", "F32", shallow, "[0,0]") + "}", "");
    expect_open_error(p, "must be an array of non-negative integers");
    const auto msg = error_of([&] { bitfit::safetensors_file f(p); });
    CHECK_MESSAGE(msg.size() < p.string().size() + 200, msg);
  }
  SUBCASE("metadata that is not an object of strings") {
    expect_open_error(raw_file(dir, "m1.safetensors", R"({"__metadata__":{"format":"pt","epochs":3}})", ""),
                      "__metadata__ value of 'epochs' is not a string");
    expect_open_error(raw_file(dir, "m2.safetensors", R"({"__metadata__":["pt"]})", ""), "__metadata__ is a JSON array");
  }
  SUBCASE("duplicate keys") {
    const auto h = "{" + tensor("a", "F32", "[1]", "[0,4]") + "," + tensor("a", "F32", "[1]", "[4,8]") + "}";
    expect_open_error(raw_file(dir, "dup.safetensors", h, eight), "key 'a' appears more than once");
  }
}

TEST_CASE("hand-built edge cases that are valid") {
  temp_dir dir;
  // No tensors at all, only metadata; trailing bytes after the last tensor are tolerated.
  bitfit::safetensors_file only_meta(raw_file(dir, "meta.safetensors", R"({"__metadata__":{"k":"v"}})", "xyz"));
  CHECK(only_meta.names().empty());
  CHECK(only_meta.metadata()["k"] == "v");
  // Zero-sized tensors may share an offset with each other and with a real one.
  const std::string h = R"({"e1":{"dtype":"F16","shape":[0],"data_offsets":[0,0]},)"
                        R"("e2":{"dtype":"F32","shape":[3,0],"data_offsets":[0,0]},)"
                        R"("x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  std::string data;
  append_le(data, 9.0f);
  bitfit::safetensors_file f(raw_file(dir, "zero.safetensors", "  " + h + "    ", data));
  CHECK(f.names().size() == 3);
  CHECK(f.f32("e1", {0}).empty());
  CHECK(f.f32("e2", {3, 0}).empty());
  CHECK(f.f32("x", {1})[0] == 9.0f);
}

TEST_CASE("safetensors_file is movable") {
  temp_dir dir;
  const std::vector<float> x = {3, 4};
  bitfit::write_safetensors(dir / "mv.safetensors", std::vector<bitfit::tensor_to_write>{{"x", {2}, x}});
  bitfit::safetensors_file a(dir / "mv.safetensors");
  bitfit::safetensors_file b(std::move(a));
  CHECK(b.f32("x", {2})[1] == 4.0f);
  bitfit::write_safetensors(dir / "mv2.safetensors", std::vector<bitfit::tensor_to_write>{{"y", {2}, x}});
  bitfit::safetensors_file c(dir / "mv2.safetensors");
  c = std::move(b);
  CHECK(c.contains("x"));
  CHECK_FALSE(c.contains("y"));
  CHECK(c.f32("x", {2})[0] == 3.0f);
}

TEST_CASE("the real all-MiniLM-L6-v2 checkpoint") {
  const auto p = bitfit::test::model_dir() / "model.safetensors";
  bitfit::safetensors_file f(p);
  CHECK(f.names().size() == 104);
  CHECK(f.metadata()["format"] == "pt");
  CHECK(f.names().front() == "embeddings.position_ids");

  const auto& pos = f.info("embeddings.position_ids");
  CHECK(pos.type == dtype::i64);
  CHECK(pos.shape == std::vector<std::int64_t>{1, 512});
  const auto raw = f.bytes("embeddings.position_ids");
  REQUIRE(raw.size() == 512 * 8);
  std::int64_t last = 0;
  std::memcpy(&last, raw.data() + 511 * 8, 8);
  CHECK(last == 511);
  CHECK_THROWS_AS((void)f.f32("embeddings.position_ids", {1, 512}), bitfit::error);

  // Reference values, from:
  //   .venv/bin/python -c "from safetensors.numpy import load_file as l; d=l('models/all-MiniLM-L6-v2/model.safetensors');
  //     w=d['embeddings.word_embeddings.weight']; print(w.ravel()[:3].tolist(), w[-1,-3:].tolist(),
  //     d['encoder.layer.0.attention.self.query.bias'][:3].tolist())"
  CHECK(f.contains("bert.embeddings.word_embeddings.weight"));
  const auto emb = f.f32("bert.embeddings.word_embeddings.weight", {30522, 384});
  CHECK(emb[0] == float(-0.019989013671875));
  CHECK(emb[1] == float(-0.0034027099609375));
  CHECK(emb[2] == float(-0.014678955078125));
  CHECK(emb[30522 * 384 - 3] == float(-0.017723897472023964));
  CHECK(emb[30522 * 384 - 2] == float(0.008096314035356045));
  CHECK(emb[30522 * 384 - 1] == float(0.004570063669234514));
  const auto qb = f.f32("encoder.layer.0.attention.self.query.bias", {384});
  CHECK(qb[0] == float(-0.1737075299024582));
  CHECK(qb[1] == float(-0.03423604369163513));
  CHECK(qb[2] == float(0.10978688299655914));
  CHECK(static_cast<const void*>(qb.data()) == static_cast<const void*>(f.bytes("encoder.layer.0.attention.self.query.bias").data()));
}

TEST_CASE("SHA-256 matches the FIPS 180-4 and hashlib test vectors") {
  auto sha = [](std::string_view s) { return bitfit::detail::sha256().update(s).hex(); };
  CHECK(sha("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // Lengths around the 55/56/64-byte padding boundaries: python -c "import hashlib; print(hashlib.sha256(b'a'*n).hexdigest())"
  CHECK(sha(std::string(55, 'a')) == "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  CHECK(sha(std::string(56, 'a')) == "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  CHECK(sha(std::string(57, 'a')) == "f13b2d724659eb3bf47f2dd6af1accc87b81f09f59f2b75e5c0bed6589dfe8c6");
  CHECK(sha(std::string(63, 'a')) == "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34");
  CHECK(sha(std::string(64, 'a')) == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  CHECK(sha(std::string(65, 'a')) == "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0");
  // One million 'a', fed in uneven pieces to exercise the streaming buffer.
  bitfit::detail::sha256 h;
  const std::string chunk(997, 'a');
  std::size_t left = 1'000'000;
  for (std::size_t piece = 1; left > 0; piece = piece % 997 + 13) {
    const std::size_t n = std::min({piece, left, chunk.size()});
    h.update(chunk.data(), n);
    left -= n;
  }
  CHECK(h.hex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256_file hashes whole files and names a missing one") {
  temp_dir dir;
  write_bytes(dir / "empty", "");
  CHECK(bitfit::sha256_file(dir / "empty") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  write_bytes(dir / "abc", "abc");
  CHECK(bitfit::sha256_file(dir / "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Same digest as `sha256sum models/all-MiniLM-L6-v2/model.safetensors` (and the goldens' meta.json).
  CHECK(bitfit::sha256_file(bitfit::test::model_dir() / "model.safetensors") ==
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db");
  auto msg = error_of([&] { (void)bitfit::sha256_file(dir / "absent"); });
  CHECK_MESSAGE(contains(msg, (dir / "absent").string()), msg);
  msg = error_of([&] { (void)bitfit::sha256_file(dir.path); });
  CHECK_MESSAGE((contains(msg, dir.path.string()) && contains(msg, "read error")), msg);
}
