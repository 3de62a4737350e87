module example.com/vetmod

go 1.26

require github.com/aws/aws-lambda-go v1.0.0

replace github.com/aws/aws-lambda-go => ./awslambda
