"""latency_lut.host_cpu: a CPU description that tells generations with the same generic model name apart."""
from latency_lut.host_cpu import describe_cpu

ZEN5 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw

processor\t: 1
cpu family\t: 99
model name\t: something else
"""


def test_generic_x86_name_gets_family_model_and_vector_width():
    assert describe_cpu(ZEN5) == "AMD EPYC (family 26 model 2, avx512)"
    older = ZEN5.replace("26", "25").replace(" avx512f avx512bw", "")
    assert describe_cpu(older) == "AMD EPYC (family 25 model 2, avx2)"
    assert describe_cpu(older) != describe_cpu(ZEN5)


def test_arm_hardware_line_is_kept_as_is():
    text = "processor\t: 0\nBogoMIPS\t: 38.40\nFeatures\t: fp asimd\n\nHardware\t: Qualcomm SM8750\n"
    assert describe_cpu(text) == "Qualcomm SM8750"
