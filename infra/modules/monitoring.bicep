// Log Analytics and workspace-based Application Insights with local (key) authentication off:
// telemetry is accepted only with an Entra token of an identity holding Monitoring Metrics
// Publisher, so the connection string in the app settings is an address, not a credential.
param workspaceName string
param appInsightsName string
param location string
param tags object
@description('Principal id of the app\'s identity.')
param principalId string

// Built-in role (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/monitor):
// Monitoring Metrics Publisher 3913510d-42f4-4e42-8a64-420c390055eb, on this component only.
var monitoringMetricsPublisher = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
    features: { disableLocalAuth: true }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
    IngestionMode: 'LogAnalytics'
  }
}

resource publishTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: monitoringMetricsPublisher
  }
}

output workspaceId string = workspace.id
output appInsightsName string = appInsights.name
