"""The sequence encoder pre-trained on the shop's own log, without labels.

By concern: :mod:`.vocabulary` (event tokens to the integer arrays the network reads, with a vocabulary of products
learned from the training rows' past and an out-of-vocabulary bucket), :mod:`.network` (the Keras encoder: embeddings
and a GRU), :mod:`.pretrain` (CoLES contrastive pre-training: two random contiguous subsequences of one customer are
positives, the other customers of the batch negatives), :mod:`.model` (late fusion: the frozen embeddings beside the
aggregate features in gradient boosting; the registry's ``encoder``).

The core (vocabulary, network, pre-training, embedding) takes :class:`~retention_core.event_tokens.EventTokens` and
plain arrays only; the model class is the thin layer that follows the product's model interface. Importing this
package imports neither Keras nor TensorFlow.
"""
