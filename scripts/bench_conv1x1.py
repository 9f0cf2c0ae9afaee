"""The box classifier's 1x1 convolutions on the CPU (docs/BENCHMARKS.md, the TF OD API section):
GFLOP/s of torch.conv2d (the oneDNN kernels libtorch runs in mrcnn) on 300 channels-last crops, two
sibling convolutions against one merged convolution and a plain matrix product.
  .venv/bin/python scripts/bench_conv1x1.py [--threads 2]"""
import argparse
import time

import torch


def median_seconds(fn, runs=5):
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[runs // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    torch.set_num_threads(parser.parse_args().threads)
    torch.manual_seed(0)
    with torch.no_grad():
        # block8's two 2080 -> 192 convolutions at 9x9; mixed_7a's 1088 -> 256 ones at 17x17.
        for channels, out, size, crops in [(2080, 192, 9, 300), (1088, 256, 17, 300)]:
            x = torch.randn(crops, channels, size, size).contiguous(memory_format=torch.channels_last)
            one = torch.randn(out, channels, 1, 1).contiguous(memory_format=torch.channels_last)
            merged = torch.randn(2 * out, channels, 1, 1).contiguous(memory_format=torch.channels_last)
            bias, merged_bias = torch.randn(out), torch.randn(2 * out)
            rows, matrix = x.permute(0, 2, 3, 1).reshape(-1, channels), merged.view(2 * out, channels)
            gflop = 2 * crops * size * size * channels * 2 * out / 1e9
            two = median_seconds(lambda: (torch.conv2d(x, one, bias), torch.conv2d(x, one, bias)))
            fused = median_seconds(lambda: torch.conv2d(x, merged, merged_bias))
            linear = median_seconds(lambda: torch.nn.functional.linear(rows, matrix, merged_bias))
            print(f"{channels} -> 2 x {out} at {size}x{size}, {crops} crops: two convs {gflop / two:.0f} GFLOP/s, "
                  f"merged {gflop / fused:.0f}, matrix product {gflop / linear:.0f}")


if __name__ == "__main__":
    main()
