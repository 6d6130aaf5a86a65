"""Deployment files: a model version as a bundle with its Dockerfile (`deploy.package`),
Kubernetes manifests (`deploy.k8s`)."""
