"""Deployment of tfstyle on TensorFlow Serving.

``python -m export --model_dir=models/tfstyle --version=1`` writes a servable model
(see ``tfstyle.serving.export``); this folder also holds the Docker Compose file, the model
server config and the Kubernetes manifests that serve it (see SERVING.md).
"""
