"""The ZenModelDeployment API: its schema, the rules on it (checked as CEL by the apiserver and as
Python by the operator) and the CRD generated from them. Imports nothing else of ours."""
