#pragma once
/// @file bitfit.hpp
/// Umbrella header: everything bitfit offers.

#include <bitfit/core/atomic_file.hpp>
#include <bitfit/core/buffer.hpp>
#include <bitfit/core/cpu.hpp>
#include <bitfit/core/error.hpp>
#include <bitfit/core/json.hpp>
#include <bitfit/core/view.hpp>
#include <bitfit/io/npy.hpp>
#include <bitfit/io/safetensors.hpp>
#include <bitfit/io/tf_checkpoint.hpp>
#include <bitfit/model/batch.hpp>
#include <bitfit/model/checkpoint.hpp>
#include <bitfit/model/config.hpp>
#include <bitfit/model/convert.hpp>
#include <bitfit/model/encoder.hpp>
#include <bitfit/model/encoder_layer.hpp>
#include <bitfit/model/params.hpp>
#include <bitfit/model/pooling.hpp>
#include <bitfit/ops/attention.hpp>
#include <bitfit/ops/dropout.hpp>
#include <bitfit/ops/embedding.hpp>
#include <bitfit/ops/gelu.hpp>
#include <bitfit/ops/gemm.hpp>
#include <bitfit/ops/layernorm.hpp>
#include <bitfit/ops/linear.hpp>
#include <bitfit/text/bert_tokenizer.hpp>
#include <bitfit/train/mask.hpp>
#include <bitfit/data/encode.hpp>
#include <bitfit/data/examples.hpp>
#include <bitfit/data/glue.hpp>
#include <bitfit/train/adamw.hpp>
#include <bitfit/train/head.hpp>
#include <bitfit/train/param_subset.hpp>
#include <bitfit/train/patch.hpp>
#include <bitfit/train/trainer.hpp>
