"""FedRouter: task-centric personalized federated fine-tuning of language models."""
