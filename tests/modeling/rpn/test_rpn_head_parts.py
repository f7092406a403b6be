"""RPNHeadFeatureSingleConv + RPNHeadConvRegressor (the original's split RPN head) equal RPNHead."""

import pytest
import torch

from maskrcnn_benchmark.modeling.rpn.rpn import RPNHead, RPNHeadConvRegressor, RPNHeadFeatureSingleConv


def test_split_head_equals_the_single_conv_head():
    torch.manual_seed(0)
    head = RPNHead(8, 3)
    features, regressor = RPNHeadFeatureSingleConv(None, 8), RPNHeadConvRegressor(None, 8, 3)
    features.conv.load_state_dict(head.conv.state_dict())
    regressor.cls_logits.load_state_dict(head.cls_logits.state_dict())
    regressor.bbox_pred.load_state_dict(head.bbox_pred.state_dict())
    for layer in (head.conv, head.cls_logits, head.bbox_pred):
        torch.nn.init.normal_(layer.bias)  # non-zero biases, so that they are compared too
    features.conv.bias.data.copy_(head.conv.bias)
    regressor.cls_logits.bias.data.copy_(head.cls_logits.bias)
    regressor.bbox_pred.bias.data.copy_(head.bbox_pred.bias)
    x = [torch.randn(2, 8, 10, 12), torch.randn(2, 8, 5, 6)]
    logits, deltas = regressor(features(x))
    ref_logits, ref_deltas = head(x)
    assert features.out_channels == 8
    for a, b in zip(logits + deltas, ref_logits + ref_deltas):
        torch.testing.assert_close(a, b)
    assert [t.shape[1] for t in logits] == [3, 3] and [t.shape[1] for t in deltas] == [12, 12]
    with pytest.raises(TypeError, match="list of feature maps"):
        regressor(x[0])
