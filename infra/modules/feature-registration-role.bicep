// Optional (main.bicep grantFeatureRegistration): the register-features step's rights at the
// subscription's scope, where preview features and resource providers are registered.
//
// No built-in role holds these actions without far more: the narrowest built-in one is
// Contributor on the whole subscription (it could then change or delete anything there). So this
// defines a custom role with only the reads and register actions the step calls (shared/arm.py:
// features.get/register, providers.get/register) and assigns it to the app's identity.
targetScope = 'subscription'

@description('Principal id of the app\'s identity.')
param principalId string
@description('Display name of the custom role (unique per tenant).')
param roleName string

resource featureRegistration 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, roleName)
  properties: {
    roleName: roleName
    description: 'Read and register preview features; register resource providers. Nothing else.'
    type: 'CustomRole'
    assignableScopes: [subscription().id]
    permissions: [
      {
        actions: [
          'Microsoft.Features/features/read'
          'Microsoft.Features/providers/features/read'
          'Microsoft.Features/providers/features/register/action'
          'Microsoft.Resources/subscriptions/providers/read'
          '*/register/action'
        ]
        notActions: []
      }
    ]
  }
}

resource registerFeatures 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, featureRegistration.id)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: featureRegistration.id
  }
}
