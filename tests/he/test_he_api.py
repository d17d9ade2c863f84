import ckks
import gateway.he


def test_clients_ckks_exports_exactly_its_public_names():
    assert sorted(ckks.__all__) == sorted(
        [
            "COMPACT",
            "DEFAULT_LIMITS",
            "DEFAULT_PARAMS",
            "PARAM_SETS",
            "PRECISE",
            "SEAL_MINOR_VERSIONS",
            "AffineModel",
            "BatchTooLarge",
            "CiphertextRejected",
            "CkksError",
            "CkksParams",
            "ClientContext",
            "ContextFrame",
            "ContextRejected",
            "FrameLimits",
            "FrameTooLarge",
            "FramingError",
            "InsecureParameters",
            "Layout",
            "ParamSet",
            "RequestFrame",
            "ResponseFrame",
            "SealVersionUnsupported",
            "Section",
            "SetClient",
            "ShapeMismatch",
            "Wire",
            "check_seal_header",
            "check_standardised",
            "ciphertext_to_version",
            "coefficients_to_slots",
            "constant_coefficient",
            "encode_context",
            "encode_request",
            "encode_response",
            "galois_element",
            "load_into",
            "next_pow2",
            "param_set_by_id",
            "param_set_by_name",
            "parse_context",
            "parse_request",
            "parse_response",
            "reversed_weights",
            "rotation_steps",
            "row_period",
            "save_bytes",
            "seal_context",
            "seal_minor_version",
            "sets_json",
            "sigmoid",
            "uncompressed",
        ]
    )
    for name in ckks.__all__:
        assert hasattr(ckks, name)


def test_gateway_he_exports_exactly_its_public_names():
    assert sorted(gateway.he.__all__) == sorted(
        [
            "ContextLoader",
            "ContextNotCached",
            "EncryptedFrameMalformed",
            "EncryptedInputRejected",
            "EncryptedPayloadTooLarge",
            "Evaluation",
            "HeEvaluator",
            "HePool",
            "HePoolSettings",
            "LinearModel",
            "Overloaded",
            "PublicContextInfo",
            "PublicContextNotFound",
            "PublicContextRejected",
            "SealVersionNotSupported",
            "ServerContext",
            "SetEvaluation",
            "SetKernels",
            "WorkerFailed",
            "measure_logit_error",
            "measure_set_errors",
            "translate",
            "validate_public_context",
        ]
    )
    for name in gateway.he.__all__:
        assert hasattr(gateway.he, name)


def test_every_codec_error_translates_to_a_client_error_status():
    errors = [
        cls("x")
        for cls in vars(ckks).values()
        if isinstance(cls, type) and issubclass(cls, ckks.CkksError)
    ]
    assert len(errors) == 9
    for exc in errors:
        assert 400 <= gateway.he.translate(exc).status_code < 500
